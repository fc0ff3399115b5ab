"""`charclf evaluate`, `calibration` and `confusion`: a saved model scored on one split of its dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from charclf.cli.app import (
    DEVICE_HELP,
    backend_option,
    check_out,
    checkpoint_option,
    data_option,
    load_model,
    main,
    min_confidence_option,
    needs_plotting,
    precision_option,
    prior_option,
    reports_errors,
    save_plot,
    show_option,
    threads_option,
)
from charclf.cli.params import FilePath
from charclf.config import MAX_BINS

SPLIT_CHOICE = click.Choice(["test", "val", "train"])
MODEL_DATA_DEFAULT = "$CHARCLF_DATA, else the folder the model was trained on, else ./data/names"


def plot_options(plot_help: str, default_out: str):
    """--plot, --out (where it writes) and --show, for a command that can draw one PNG."""
    def apply(command):
        command = needs_plotting(command)
        command = show_option(command)
        command = click.option("--out", type=FilePath(dir_okay=False, path_type=Path), default=Path(default_out),
                               show_default=True, help="Where --plot writes.")(command)
        return click.option("--plot", is_flag=True, help=plot_help)(command)
    return apply


def _write_text(path: Path, text: str) -> None:
    from charclf.files.atomic import atomic_write

    try:
        atomic_write(path, lambda f: f.write(text.encode()))
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


def _evaluation(checkpoint, data, split, device, precision, threads, backend, **options):
    """Load the model and score it on one split of its dataset."""
    from charclf.files.locations import resolve_data_dir

    clf = load_model(checkpoint, device, precision, threads, backend, batch=True)
    recorded = clf.checkpoint.train_config.get("data_dir")
    result = clf.evaluate(resolve_data_dir(data, fallback=recorded), split, **options)
    if not result["same_data_as_training"]:
        click.echo(
            f"warning: the dataset at {result['data_dir']} differs from the one this model was trained "
            "on, so this split may hold names it saw in training", err=True,
        )
    if split == "val" and "refit" in clf.checkpoint.metrics:
        click.echo("warning: this model was refitted: it trained on the validation names too, so its scores on "
                   "them are not held-out scores (the recorded validation scores are the first run's)", err=True)
    return clf, result


def _calibration_line(calibration: dict) -> str:
    before, after = calibration["before"], calibration["after"]
    return (f"calibration: temperature {calibration['temperature']:.3f}; ECE ({calibration['bins']} bins) "
            f"{before['ece']:.4f} -> {after['ece']:.4f}, Brier {before['brier']:.4f} -> {after['brier']:.4f}")


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@min_confidence_option("Also report coverage (the share of names answered) and the accuracy on those "
                       "(selective accuracy) when answering only at calibrated confidence >= P.")
@plot_options("Draw the coverage/accuracy curve over all thresholds as a PNG.", "coverage.png")
@prior_option
@click.option("--extra-names", metavar="mimesis|DIR",
              help="Also score the off-distribution set of these extra names (as `charclf train --extra-names`). "
                   "Default: the extra names the model trained with, if any.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@reports_errors
def evaluate(checkpoint, data, split, min_confidence, plot, out, show, prior, extra_names, as_json, device, threads,
             precision, backend):
    """Score a model on a split of its dataset, re-made exactly as at training time.

    Prints accuracy, macro-F1 (mean F1 over labels), the always-majority baseline, the
    calibration of its probabilities (ECE and Brier score, raw softmax -> with its
    temperature), per-label precision/recall/F1/support, and the confusion matrix.

    \b
    Examples:
      charclf evaluate --split val --json
      charclf evaluate --min-confidence 0.6 --plot --out coverage.png
    """
    from charclf.report.metrics import format_confusion, format_per_label

    check_out(out if plot else None, "picture", checkpoint, [prior], data)
    clf, result = _evaluation(checkpoint, data, split, device, precision, threads, backend, prior=prior,
                              min_confidence=0.0 if plot and min_confidence is None else min_confidence,
                              extra_names=extra_names)
    if min_confidence is None:
        result.pop("selective", None)
    if plot:
        from charclf.report.plots import save_coverage

        title = f"{clf.checkpoint.model_config.arch} on the {split} split"
        save_plot(lambda path: save_coverage(result["coverage_curve"], path, title, result.get("selective")), out, show,
                   "coverage/accuracy curve", quiet_stdout=as_json)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(clf.path), "labels": clf.labels, **result}, indent=2))
        return
    base = result["majority_baseline"]
    sampled = f", a random sample of its {result['split_rows']}" if result["split_rows"] > result["n"] else ""
    click.echo(f"{clf.path}: {split} split of {result['data_dir']} ({result['n']} names{sampled})")
    click.echo(f"accuracy  {result['accuracy']:.4f}   (always-{base['label']} baseline {base['accuracy']:.4f})")
    click.echo(f"macro-F1  {result['macro_f1']:.4f}" + (f"   (probabilities reweighted to the {prior} prior)"
                                                        if "prior" in result else ""))
    click.echo(_calibration_line(result["calibration"]))
    if "offdist" in result:
        o = result["offdist"]
        click.echo(f"off-distribution: accuracy {o['accuracy']:.4f}  macro-F1 {o['macro_f1']:.4f}  ({o['n']} names "
                   f"of {o['source']} never trained on)")
    elif "offdist_missing" in result:
        click.echo(f"note: no off-distribution scores: {result['offdist_missing']}", err=True)
    for row in result.get("label_sets", []) if result["n"] else []:
        click.echo(f"label sets for {row['coverage_target']:.0%}: hold the true label for {row['coverage']:.4f} "
                   f"of names, {row['mean_size']:.2f} labels on average (at most {row['max_size']})")
    if "selective" in result:
        sel = result["selective"]
        accuracy = "-" if sel["selective_accuracy"] is None else f"{sel['selective_accuracy']:.4f}"
        click.echo(f"min confidence {sel['min_confidence']:g}: answered {sel['answered']} of {result['n']} "
                   f"(coverage {sel['coverage']:.4f}), accuracy on those {accuracy}")
    click.echo("\n" + format_per_label(result) + "\n")
    click.echo(format_confusion(result["confusion"], clf.labels))


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@click.option("--bins", type=click.IntRange(1, MAX_BINS), default=15, show_default=True,
              help="Confidence bins for ECE.")
@plot_options("Draw the reliability diagram (before and after) as a PNG.", "calibration.png")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@reports_errors
def calibration(checkpoint, data, split, bins, plot, out, show, as_json, device, threads, precision, backend):
    """How far the model's probabilities can be trusted, before and after its temperature.

    Training fits one temperature on the validation split (temperature scaling) and stores
    it in the checkpoint; predict divides the logits by it. This shows, on a split, the
    expected calibration error (ECE: the gap between confidence and accuracy, averaged over
    confidence bins), the Brier score and the log-loss of the raw softmax and of the
    calibrated probabilities, and per bin how often the model was right.

    \b
    Example:
      charclf calibration --plot --out calibration.png
    """
    check_out(out if plot else None, "picture", checkpoint, (), data)
    clf, result = _evaluation(checkpoint, data, split, device, precision, threads, backend, bins=bins)
    cal = result["calibration"]
    if plot:
        from charclf.report.plots import save_reliability

        title = f"{clf.checkpoint.model_config.arch} on the {split} split (T = {cal['temperature']:.3f})"
        save_plot(lambda path: save_reliability(cal["before"]["bins"], cal["after"]["bins"], path, title), out, show,
                   "reliability diagram", quiet_stdout=as_json)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(clf.path), "split": split, "n": result["n"],
                               "accuracy": result["accuracy"], **cal}, indent=2))
        return
    fit = "fitted on the validation split" if cal["fit_on"] == "val" else "none stored: raw softmax"
    click.echo(f"{clf.path}: {split} split ({result['n']} names), accuracy {result['accuracy']:.4f}")
    click.echo(f"temperature {cal['temperature']:.4f} ({fit})\n")
    click.echo(f"{'':<12} {'ECE':>7} {'Brier':>7} {'log-loss':>8}")
    for when, label in (("before", "raw softmax"), ("after", "calibrated")):
        row = cal[when]
        click.echo(f"{label:<12} {row['ece']:>7.4f} {row['brier']:>7.4f} {row['nll']:>8.4f}")
    click.echo(f"\n{'confidence':<12} {'names':>6} {'mean conf':>9} {'accuracy':>8}   (calibrated)")
    for b in cal["after"]["bins"]:
        if b["count"]:
            click.echo(f"{b['low']:.2f}-{b['high']:.2f}    {b['count']:>6} {b['confidence']:>9.3f} "
                       f"{b['accuracy']:>8.3f}")


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@click.option("--normalize", is_flag=True, help="Text matrix as shares of each true label's names.")
@click.option("--plot", is_flag=True, help="Draw the row-normalised matrix as a PNG.")
@click.option("--out", type=FilePath(dir_okay=False, path_type=Path),
              help="Where to write: the PNG with --plot (default confusion.png), else the text matrix.")
@show_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@needs_plotting
@reports_errors
def confusion(checkpoint, data, split, normalize, plot, out, show, device, threads, precision, backend):
    """Show which labels the model mistakes for which (rows: true, columns: predicted).

    \b
    Examples:
      charclf confusion --normalize
      charclf confusion --plot --out confusion.png
    """
    from charclf.report.metrics import format_confusion

    check_out(out or Path("confusion.png") if plot else out, "picture" if plot else "text", checkpoint, (), data)
    clf, result = _evaluation(checkpoint, data, split, device, precision, threads, backend)
    table = format_confusion(result["confusion"], clf.labels, normalize=normalize)
    if not plot:
        if out:
            _write_text(out, table + "\n")
            click.echo(f"wrote the confusion matrix to {out}")
        else:
            click.echo(table)
        return
    from charclf.report.plots import save_confusion

    out = out or Path("confusion.png")
    title = f"{clf.checkpoint.model_config.arch} on the {split} split: accuracy {result['accuracy']:.3f}"
    click.echo(table)
    save_plot(lambda path: save_confusion(result["confusion"], clf.labels, path, title), out, show, "confusion plot")


