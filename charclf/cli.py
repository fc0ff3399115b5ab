"""The `charclf` command: parses options, calls the library, prints. Heavy imports (torch,
matplotlib) happen inside the commands that need them, so `charclf --help` stays fast."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click

from charclf.cliparams import FiniteFloatRange
from charclf.console import NORMAL, VERBOSE, VERBOSITY, run_log, say, show_progress, verbosity_options
from charclf.config import (ARCHS, CLASS_WEIGHTINGS, MAX_SEED, MODEL_LIMITS, MODELS, NGRAM, POOLINGS, ModelConfig,
                            TrainConfig, default_of, defaults_for)
from charclf.errors import CharclfError

SPLIT_CHOICE = click.Choice(["test", "val", "train"])
DEVICE_HELP = "auto (CUDA when available), cpu, or cuda[:N]."


def reports_errors(command):
    """Library errors become one line `Error: ...` on stderr with exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CharclfError as e:
            error = click.ClickException(_rank_prefix() + str(e))
            error.exit_code = getattr(e, "exit_code", 1)
            raise error from None
        except ModuleNotFoundError as e:  # an optional dependency is not installed: say which extra
            from charclf.extras import missing_hint

            if missing_hint(e) is None:
                raise
            raise click.ClickException(missing_hint(e)) from None

    return wrapper


def _rank_prefix() -> str:
    """Under torchrun with several processes, which one an error line comes from."""
    import os

    if "WORLD_SIZE" not in os.environ:  # not under torchrun: no need to import torch to know
        return ""
    from charclf.distributed import rank_prefix

    return rank_prefix()


def checkpoint_option(command):
    return click.option(
        "--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
        help="Checkpoint file. Default: the model `charclf train` last wrote to its default place, "
             "else the pretrained model that ships with charclf. predict and info also read a .onnx file "
             "from `charclf export`, without torch.",
    )(command)


def data_option(default_help: str):
    return click.option(
        "--data", type=click.Path(path_type=Path),
        help=f"Folder of <Label>.txt files, or a CSV/TSV file of name,label rows (read as a stream). "
             f"Default: {default_help}.",
    )


def prior_option(command):
    return click.option(
        "--prior", metavar="uniform|train|FILE.json",
        help="Reweight the probabilities to another population's label frequencies: uniform (every "
             "label equally common), train (as trained: the default), or a JSON file of label: weight. "
             "See 'Priors' in the README.")(command)


def min_confidence_option(help_text: str):
    return click.option("--min-confidence", type=FiniteFloatRange(0, 1), metavar="P", help=help_text)


TRAIN_DATA_DEFAULT = "$CHARCLF_DATA, else ./data/names"
MODEL_DATA_DEFAULT = "$CHARCLF_DATA, else the folder the model was trained on, else ./data/names"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="charclf", prog_name="charclf")  # read only when asked
def main():
    """Guess a name's language of origin from its spelling with a character-level RNN.

    \b
    Typical session:
      charclf data fetch          # the 18-language names dataset into ./data/names
      charclf train               # a bidirectional GRU over the letters, best epoch kept on validation
      charclf compare             # GRU, LSTM, plain RNN and the n-gram baseline side by side
      charclf evaluate            # held-out accuracy, macro-F1, calibration, per-label scores, confusion
      charclf predict Hinton Satoshi Иванов
      charclf predict Jones --min-confidence 0.5   # `unknown` when the model is unsure
    """


def per_arch(field: str) -> str:
    """Help text naming each recurrent backbone's default for `field`."""
    values = {arch: default_of(arch, field) for arch in ARCHS}
    shown = {arch: ("bidirectional" if value else "unidirectional") if isinstance(value, bool)
             else f"{value:g}" if isinstance(value, (int, float)) else value for arch, value in values.items()}
    if len(set(shown.values())) == 1:  # the same for every backbone
        return f"[default: {next(iter(shown.values()))}]"
    return "[default: " + ", ".join(f"{arch} {value}" for arch, value in shown.items()) + "]"


def threads_option(command):
    return click.option(
        "--threads", type=click.IntRange(min=1), metavar="N",
        help="CPU threads for torch (for a .onnx model: ONNX Runtime). Default: $CHARCLF_THREADS, else the free "
             "cores (cores less the load average, at least 1; names given as arguments: 1). More threads than "
             "free cores slow torch down many times.",
    )(command)


def _use_threads(threads: int | None, batch: bool = True) -> None:
    from charclf.threads import use_threads

    try:
        use_threads(threads, batch)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--model", "--arch", "arch", type=click.Choice(MODELS), default="gru", show_default=True,
              help="Recurrent backbone, or ngram: the classical baseline (a logistic regression over "
                   "character 1-5-grams, no network).")
@click.option("--hidden-size", type=click.IntRange(1, MODEL_LIMITS["hidden_size"]), help=per_arch("hidden_size"))
@click.option("--num-layers", type=click.IntRange(1, MODEL_LIMITS["num_layers"]), help=per_arch("num_layers"))
@click.option("--bidirectional/--unidirectional", default=None, help=per_arch("bidirectional"))
@click.option("--embedding-dim", type=click.IntRange(0, MODEL_LIMITS["embedding_dim"]),
              help="Letter embedding width (0: one-hot letters straight into the RNN). " + per_arch("embedding_dim"))
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True), help=per_arch("dropout"))
@click.option("--pooling", type=click.Choice(POOLINGS),
              help="Name vector: the last states, the max over letters, or the mean and the max. " + per_arch("pooling"))
@click.option("--lowercase/--case-sensitive", default=None,
              help="Read letters lower-cased (Jones and JONES alike). " + per_arch("lowercase"))
@click.option("--epochs", type=click.IntRange(min=1), help=per_arch("epochs"))
@click.option("--batch-size", type=click.IntRange(min=1), help=per_arch("batch_size"))
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True),
              help="Peak learning rate of the one-cycle schedule. " + per_arch("lr"))
@click.option("--weight-decay", type=FiniteFloatRange(min=0), help=per_arch("weight_decay"))
@click.option("--class-weighting", type=click.Choice(list(CLASS_WEIGHTINGS)),
              help="Weigh rare labels more in the loss: (names / names of the label) to the power 1/4, "
                   "1/2 or 1. " + per_arch("class_weighting"))
@click.option("--label-smoothing", type=FiniteFloatRange(0, 1, max_open=True), help=per_arch("label_smoothing"))
@click.option("--average-decay", type=FiniteFloatRange(0, 1, max_open=True),
              help="Keep a moving average of the weights with this decay per step (0: the weights as "
                   "trained). " + per_arch("average_decay"))
@click.option("--next-letter-weight", type=FiniteFloatRange(min=0),
              help="Also learn to predict each next (and previous) letter, with this weight in the loss "
                   "(0: no; the saved model never includes it). " + per_arch("next_letter_weight"))
@click.option("--ngram-buckets", type=click.IntRange(1, MODEL_LIMITS["ngram_buckets"]),
              help=f"--model ngram: hash buckets of its n-grams. [default: {ModelConfig.ngram_buckets}]")
@click.option("--ngram-c", type=FiniteFloatRange(min=0, min_open=True),
              help=f"--model ngram: inverse L2 strength of its logistic regression. [default: {TrainConfig.ngram_c:g}]")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=TrainConfig.seed, show_default=True,
              help="Seeds the split, the initial weights and the batch order.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write. Default: $CHARCLF_HOME/model.pt (~/.local/share/charclf/model.pt), "
                   "the model evaluate, confusion and predict use without --checkpoint.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run saved beside --out, with its own settings.")
@click.option("--force", is_flag=True,
              help="Replace an existing --out that is not a charclf checkpoint (never a device, a folder or a "
                   "file of the dataset).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (stderr). Default: when stderr is a terminal, unless -q.")
@click.pass_context
@verbosity_options("Also print every setting the run uses (model and training options).")
@reports_errors
def train(ctx, data, arch, seed, device, threads, out, resume, force, progress, verbosity, **options):
    """Train a classifier on a folder of <Label>.txt files or a CSV/TSV file of names.

    The default model is a bidirectional GRU over letter embeddings, its outputs pooled over
    all letters (mean and max), then a linear layer, and nothing else. While training it also
    learns to predict each next letter (those layers are not saved), and the weights kept are a
    moving average over the training steps. lstm and rnn change a few of its settings; options
    given here win. --model ngram trains the classical baseline instead: a logistic regression
    over character 1-5-grams, no network.

    A folder's names are folded to ASCII, deduplicated and split 80/10/10 on unique names (no name
    text in two splits). The checkpoint with the best validation accuracy (macro-F1 breaking
    ties) is kept at --out, with its metric history (.history.json) and curves (.curves.png)
    beside it. After every epoch the run's state (.state.pt) is saved too: an interrupted run
    (Ctrl-C, a kill, a crash) continues with --resume and ends as if it had never stopped.

    A CSV/TSV file (name,label rows) is streamed: each name's split comes from a hash of
    the name, and memory stays flat however large the file. Started by torchrun, the
    processes train one model data-parallel; rank 0 writes the files.

    \b
    Examples:
      charclf train --model lstm --epochs 15 --out runs/lstm.pt
      charclf train --model ngram --out runs/ngram.pt
      charclf train --out runs/lstm.pt --resume
      charclf train --data names.csv --out runs/big.pt --threads 2
      torchrun --nproc_per_node 4 -m charclf train --out runs/ddp.pt
    """
    from charclf.distributed import is_main_process
    from charclf.locations import default_checkpoint, resolve_data_dir
    from charclf import training

    _use_threads(threads)
    out = out or default_checkpoint()
    progress, log = show_progress(verbosity, progress), run_log(verbosity)
    if resume:
        state = training.load_training_state(out)
        _check_resume_options(ctx, {**state["model_config"], **state["train_config"]})
        data_dir = resolve_data_dir(data, fallback=state["data_dir"])
        say(verbosity, _settings_line(state["model_config"], state["train_config"]), VERBOSE)
        result = training.resume(out, data_dir=data_dir, device=device, progress=progress, state=state, log=log,
                                  force=force)
        arch = state["model_config"]["arch"]
    else:
        model_options, config = defaults_for(arch, seed=seed, **options)
        say(verbosity, _settings_line({"arch": arch, **model_options}, config), VERBOSE)
        result = training.train(resolve_data_dir(data), out, arch=arch, model_options=model_options, config=config,
                                device=device, progress=progress, log=log, force=force)
    if not is_main_process():
        return  # rank 0 reports for all
    m = result.metrics
    base = m["test_majority_baseline"]
    click.echo(f"saved {arch} model to {out} (best epoch {m['best_epoch']} of {m['epochs_run']}, "
               f"{m['train_seconds']:.1f} s of training, {m['parameters']:,} parameters)")
    click.echo(f"validation: accuracy {m['val']['accuracy']:.4f}  macro-F1 {m['val']['macro_f1']:.4f}")
    click.echo(f"test:       accuracy {m['test']['accuracy']:.4f}  macro-F1 {m['test']['macro_f1']:.4f}  "
               f"(always-{base['label']} baseline: accuracy {base['accuracy']:.4f})")
    history, curves = training.history_paths(result.checkpoint)
    click.echo(f"history: {history}" + (f"  curves: {curves}" if arch != NGRAM and curves.is_file() else ""))


def _settings_line(model_options: dict, config) -> str:
    """-v: every option a run trains with, in one line."""
    from dataclasses import asdict, is_dataclass

    settings = {**model_options, **(asdict(config) if is_dataclass(config) else config)}
    return "settings: " + ", ".join(f"{key}={value}" for key, value in settings.items())


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--archs", default=",".join(MODELS), show_default=True,
              help="Models to train, comma-separated: backbones and ngram (the baseline).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs for every backbone. Default: each one's own.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=TrainConfig.seed, show_default=True)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/compare"),
              show_default=True, help="Where the checkpoints, compare.json and compare.png go.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (stderr). Default: when stderr is a terminal, unless -q.")
@verbosity_options("Also print every setting each model trains with.")
@reports_errors
def compare(data, archs, epochs, seed, device, threads, out_dir, progress, verbosity):
    """Train several models with their defaults on the same split and compare them.

    Prints a table (test accuracy, macro-F1, parameters, training seconds) and draws their
    validation curves side by side in one PNG: see how the gated cells (LSTM, GRU) fare
    against the plain RNN on the same names, and all three against the n-gram baseline
    (a level line: it is fitted in one go). Below the table, each model's test accuracy by
    name length shows how it copes with short and long names (a plain RNN read in one
    direction and answering from its last state, --unidirectional --pooling last, is the
    textbook case for forgetting the start of long names).

    \b
    Example:
      charclf compare --archs rnn,gru --epochs 10
    """
    from charclf import training
    from charclf.comparison import compare_models
    from charclf.locations import resolve_data_dir

    chosen = [a.strip() for a in archs.split(",") if a.strip()]
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown or not chosen:
        raise click.BadParameter(f"choose from {', '.join(MODELS)}, got {archs!r}", param_hint="--archs")
    _use_threads(threads)
    data_dir = resolve_data_dir(data)
    results = {}
    progress, log = show_progress(verbosity, progress), run_log(verbosity)
    for arch in chosen:
        options, config = defaults_for(arch, epochs=epochs, seed=seed)
        say(verbosity, _settings_line({"arch": arch, **options}, config), VERBOSE)
        results[arch] = training.train(data_dir, out_dir / f"{arch}.pt", arch=arch, model_options=options,
                                       config=config, device=device, progress=progress, log=log)
    for line in compare_models(results, data_dir, out_dir, device):
        click.echo(line)


def _check_resume_options(ctx: click.Context, saved: dict) -> None:
    """--resume continues a run as it was started: an option given now must agree with it."""
    from click.core import ParameterSource

    for name, value in ctx.params.items():
        given = ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if given and name in saved and value != saved[name]:
            option = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"--resume continues the saved run with its own settings: {option} {value} differs from its {saved[name]}"
            )


def _evaluation(checkpoint, data, split, device, **options):
    """Load the model and score it on one split of its dataset."""
    from charclf.classifier import Classifier
    from charclf.locations import resolve_data_dir

    clf = Classifier.load(checkpoint, device=device)
    recorded = clf.checkpoint.train_config.get("data_dir")
    result = clf.evaluate(resolve_data_dir(data, fallback=recorded), split, **options)
    if not result["same_data_as_training"]:
        click.echo(
            f"warning: the dataset at {result['data_dir']} differs from the one this model was trained "
            "on, so this split may hold names it saw in training", err=True,
        )
    return clf, result


def show_option(command):
    return click.option("--show/--no-show", default=None,
                        help="Open the plot in a window. Default: when a display and a terminal exist.")(command)


def plot_options(plot_help: str, default_out: str):
    """--plot, --out (where it writes) and --show, for a command that can draw one PNG."""
    def apply(command):
        command = _needs_plotting(command)
        command = show_option(command)
        command = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path(default_out),
                               show_default=True, help="Where --plot writes.")(command)
        return click.option("--plot", is_flag=True, help=plot_help)(command)
    return apply


def _needs_plotting(command):
    """--plot without matplotlib: a one-line error naming the extra, before any work."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from charclf.extras import available, install_hint

        if kwargs.get("plot") and not available("matplotlib"):
            raise click.ClickException(install_hint("matplotlib"))
        return command(*args, **kwargs)

    return wrapper


def _save_plot(draw, out: Path, show: bool | None, what: str, quiet_stdout: bool = False) -> None:
    """Call draw(out) to write a PNG; say where `what` went (on stderr when stdout carries JSON);
    open it when asked (or when a screen is there)."""
    from charclf.plots import display_available, show_png

    try:
        draw(out)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from None
    click.echo(f"saved the {what} to {out}", err=quiet_stdout)
    if show if show is not None else (display_available() and sys.stdin.isatty() and sys.stdout.isatty()):
        show_png(out)


def _calibration_line(calibration: dict) -> str:
    before, after = calibration["before"], calibration["after"]
    return (f"calibration: temperature {calibration['temperature']:.3f}; ECE ({calibration['bins']} bins) "
            f"{before['ece']:.4f} -> {after['ece']:.4f}, Brier {before['brier']:.4f} -> {after['brier']:.4f}")


def _thread_count(threads: int | None, batch: bool) -> int:
    from charclf.threads import thread_count

    try:
        return thread_count(threads, batch)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@min_confidence_option("Also report coverage (the share of names answered) and the accuracy on those "
                       "(selective accuracy) when answering only at calibrated confidence >= P.")
@plot_options("Draw the coverage/accuracy curve over all thresholds as a PNG.", "coverage.png")
@prior_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@reports_errors
def evaluate(checkpoint, data, split, min_confidence, plot, out, show, prior, as_json, device, threads):
    """Score a model on a split of its dataset, re-made exactly as at training time.

    Prints accuracy, macro-F1 (mean F1 over labels), the always-majority baseline, the
    calibration of its probabilities (ECE and Brier score, raw softmax -> with its
    temperature), per-label precision/recall/F1/support, and the confusion matrix.

    \b
    Examples:
      charclf evaluate --split val --json
      charclf evaluate --min-confidence 0.6 --plot --out coverage.png
    """
    _use_threads(threads)
    from charclf.metrics import format_confusion, format_per_label

    clf, result = _evaluation(checkpoint, data, split, device, prior=prior,
                              min_confidence=0.0 if plot and min_confidence is None else min_confidence)
    if min_confidence is None:
        result.pop("selective", None)
    if plot:
        from charclf.plots import save_coverage

        title = f"{clf.checkpoint.model_config.arch} on the {split} split"
        _save_plot(lambda path: save_coverage(result["coverage_curve"], path, title, result.get("selective")), out, show,
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
@click.option("--bins", type=click.IntRange(min=1), default=15, show_default=True, help="Confidence bins for ECE.")
@plot_options("Draw the reliability diagram (before and after) as a PNG.", "calibration.png")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@reports_errors
def calibration(checkpoint, data, split, bins, plot, out, show, as_json, device, threads):
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
    _use_threads(threads)
    clf, result = _evaluation(checkpoint, data, split, device, bins=bins)
    cal = result["calibration"]
    if plot:
        from charclf.plots import save_reliability

        title = f"{clf.checkpoint.model_config.arch} on the {split} split (T = {cal['temperature']:.3f})"
        _save_plot(lambda path: save_reliability(cal["before"]["bins"], cal["after"]["bins"], path, title), out, show,
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
            click.echo(f"{b['low']:.2f}-{b['high']:.2f}    {b['count']:>6} {b['confidence']:>9.3f} {b['accuracy']:>8.3f}")


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@click.option("--normalize", is_flag=True, help="Text matrix as shares of each true label's names.")
@click.option("--plot", is_flag=True, help="Draw the row-normalised matrix as a PNG.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write: the PNG with --plot (default confusion.png), else the text matrix.")
@show_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@_needs_plotting
@reports_errors
def confusion(checkpoint, data, split, normalize, plot, out, show, device, threads):
    """Show which labels the model mistakes for which (rows: true, columns: predicted).

    \b
    Examples:
      charclf confusion --normalize
      charclf confusion --plot --out confusion.png
    """
    _use_threads(threads)
    from charclf.metrics import format_confusion

    clf, result = _evaluation(checkpoint, data, split, device)
    table = format_confusion(result["confusion"], clf.labels, normalize=normalize)
    if not plot:
        if out:
            _write_text(out, table + "\n")
            click.echo(f"wrote the confusion matrix to {out}")
        else:
            click.echo(table)
        return
    from charclf.plots import save_confusion

    out = out or Path("confusion.png")
    title = f"{clf.checkpoint.model_config.arch} on the {split} split: accuracy {result['accuracy']:.3f}"
    click.echo(table)
    _save_plot(lambda path: save_confusion(result["confusion"], clf.labels, path, title), out, show, "confusion plot")


def _write_text(path: Path, text: str) -> None:
    from charclf.files import atomic_write

    try:
        atomic_write(path, lambda f: f.write(text.encode()))
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


LINES_READ = "charclf.lines_read"  # click context meta: lines _read_lines has read (predict --file)


def table_options(command):
    """predict's --csv options, -q and -v, handled around it: with --csv, _predict_table answers
    the table; else predict runs as it is (its --file progress bar and -v summary by _read_lines)."""

    @functools.wraps(command)
    def wrapper(*args, verbosity, table, columns, out, delimiter, encoding_errors, all_probs, **kwargs):
        options = {"columns": columns, "out": out, "delimiter": delimiter, "encoding_errors": encoding_errors,
                   "all_probs": all_probs}
        if table is not None:
            return _predict_table(table, verbosity=verbosity, **options, **kwargs)
        _refuse_table_options(kwargs.get("file"), options)
        meta = click.get_current_context().meta
        meta[VERBOSITY], meta[LINES_READ] = verbosity, 0
        started = time.perf_counter()
        try:
            return command(*args, **kwargs)
        finally:
            seconds, lines = time.perf_counter() - started, meta[LINES_READ]
            if lines:
                say(verbosity, f"predicted {lines:,} lines in {seconds:.1f} s ({lines / max(seconds, 1e-9):,.0f} "
                               "names/s), start-up included", VERBOSE)

    table = [
        click.option("--csv", "table", type=click.Path(dir_okay=False, allow_dash=True), metavar="TABLE",
                     help="Read a CSV/TSV table with a header row ('-' for stdin) and write it back with the "
                          "answers for --column appended (see above)."),
        click.option("--column", "columns", multiple=True, metavar="NAME",
                     help="--csv: the column of names. Repeat it to classify several columns, each on its own. "
                          "Default: a one-column table's only column."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                     help="--csv: write the table here (default: stdout); an existing file is replaced only "
                          "when the run succeeds."),
        click.option("--delimiter", metavar="CHAR",
                     help="--csv: the cell delimiter (',', ';', '|', 'tab' or '\\t'). Default: the extension's "
                          "(.csv comma, .tsv tab), else sniffed from the first lines. The output uses the same."),
        click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict",
                     show_default=True,
                     help="--csv: bytes that are not UTF-8 stop the run naming the line (strict), or are read "
                          "as U+FFFD (replace)."),
        click.option("--all-probs", is_flag=True, help="--csv: add a probability_<Label> column for every label."),
    ]
    for option in reversed(table):
        wrapper = option(wrapper)
    return verbosity_options("With --file: say at the end how many names were read and how fast; with --csv, "
                             "how many rows were written.")(wrapper)


def _refuse_table_options(file, table: dict) -> None:
    """--file FILE.csv, or a --csv option without --csv: say what to use instead (exit 2)."""
    from charclf.tables import DELIMITERS

    if file and Path(file).suffix.lower() in DELIMITERS:
        raise click.UsageError(f"{file} looks like a table: use --csv {file} --column NAME "
                               "(--file reads one name per line)")
    given = [option for option, value in (("--column", table["columns"]), ("--out", table["out"]),
             ("--delimiter", table["delimiter"]), ("--all-probs", table["all_probs"]),
             ("--encoding-errors", table["encoding_errors"] != "strict")) if value]
    if given:
        raise click.UsageError(f"{', '.join(given)} only go(es) with --csv TABLE")


@reports_errors
def _predict_table(table, *, names, file, as_json, k, min_confidence, checkpoint, device, batch_size, threads,
                   verbosity, columns, out, delimiter, encoding_errors, all_probs, **predict_options) -> None:
    """predict --csv: the table's rows with their answers, to --out or stdout. `predict_options`:
    predict's other options, passed on to Classifier.predict as they are."""
    if names or file or as_json:
        raise click.UsageError("--csv reads its names from the table: give no names, --file or --json with it")
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1:
            raise click.BadParameter(f"one character, or 'tab', got {delimiter!r}", param_hint="--delimiter")
    from charclf.tables import write_predictions

    clf = _predictor(checkpoint, device, threads, batch=True)
    predict_options = _uncertainty_options(clf, **predict_options)
    started = time.perf_counter()
    summary = write_predictions(clf, table, out, columns, k, min_confidence, all_probs, delimiter, encoding_errors,
                                batch_size, show_progress(verbosity), **predict_options)
    seconds = time.perf_counter() - started
    abstained = f", {summary.abstained:,} below --min-confidence" if min_confidence is not None else ""
    say(verbosity, f"wrote {summary.rows:,} rows to {out or 'stdout'} in {seconds:.1f} s "
                   f"({summary.rows / max(seconds, 1e-9):,.0f} rows/s); {summary.errors:,} name(s) could not be "
                   f"classified (see the error column){abstained}", NORMAL if out else VERBOSE)


def _read_lines(file: Path | str):
    """Yield (line number, text, error or None) from a file or '-' (stdin), streaming.

    A line that is not valid UTF-8, or too long to be a name, is reported by number; it does
    not stop the others (charclf.lines)."""
    from tqdm import tqdm

    from charclf.lines import read_lines

    if str(file) == "-" and sys.stdin is None:
        raise click.ClickException("cannot read names from stdin: it is closed")
    stream = sys.stdin.buffer if str(file) == "-" else None
    try:
        handle = stream or open(file, "rb")
    except OSError as e:
        raise click.ClickException(f"cannot read {file}: {e.strerror or e}") from None
    meta = click.get_current_context().meta  # -q/-v, and where the count of lines read goes
    bar = tqdm(unit=" lines", unit_scale=True, desc="predicting", file=sys.stderr, leave=False,
               disable=not show_progress(meta.get(VERBOSITY, NORMAL)))
    with handle, bar:
        for item in read_lines(handle):
            meta[LINES_READ] = item[0]
            bar.update()
            yield item


@main.command()
@click.argument("names", nargs=-1)
@click.option("-k", "--top", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many labels to show per name.")
@click.option("--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read names from FILE, one per line ('-' for stdin).")
@min_confidence_option("Answer `unknown` (with the reason and the best guess) when the top calibrated "
                       "probability is below P (0-1).")
@click.option("--coverage", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), metavar="C",
              help="Also give each name its conformal label set: the smallest set of labels that holds "
                   "the true label with probability C (e.g. 0.9), for names like the training data's.")
@prior_option
@click.option("--full-name", "full_names", is_flag=True,
              help="Names are full names (\"Geoffrey Hinton\", \"Hinton, Geoffrey\", \"Nguyen Van An\"): "
                   "classify the family name, found by a documented rule (see 'Full names' in the README).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per name and line (JSON Lines, ASCII-escaped).")
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@click.option("--batch-size", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Names (or --csv rows) per batch when reading a file.")
@table_options
@reports_errors
def predict(names, k, file, min_confidence, coverage, prior, full_names, as_json, checkpoint, device, batch_size, threads):
    """Predict the likeliest languages of NAMES, with calibrated probabilities.

    Names come from the arguments, or from --file (one per line; '-' or a lone '-' argument
    reads stdin). Names in other scripts are transliterated to Latin first and shown as
    read (Иванов -> Ivanov); where that reading is known to mislead (Han characters read as
    Mandarin, Arabic short vowels guessed) the answer says so. The script itself weighs in (a
    name in Hangul is Korean, in Greek letters Greek; --json reports it as "script"). A name
    with no letters at all is answered `unknown` with the reason. An undecodable line gets an error on
    stderr (or in its JSON object) and the others are still predicted; the exit code is then 1.

    --csv TABLE reads a CSV/TSV table whose first row names its columns and writes every row
    back (to --out, else stdout), in order, with all its cells, followed by the answer for
    --column: label, probability, label_2, probability_2 ... up to -k, then abstained and
    best_guess (with --min-confidence: label is `unknown` below it), error (why a name could
    not be classified: empty, no letters) and, with --all-probs, probability_<Label> for every
    label. Several --column options (first and last name, say) classify each column on its own,
    its answer columns prefixed "<column>_" (as they are when a name would clash with a column
    the table has); the shipped model learnt surnames, so its answers for first names are weaker.
    The table is streamed in batches: memory stays flat however long it is.

    \b
    Examples:
      charclf predict Hinton Satoshi Иванов -k 5
      charclf predict --file names.txt --min-confidence 0.5 --json > predictions.jsonl
      charclf predict --csv people.csv --column surname --out people-labelled.csv
      charclf predict --csv people.tsv --column first --column last --all-probs > out.tsv
    """
    if names == ("-",) and not file:
        names, file = (), "-"
    if names and file:
        raise click.UsageError("give names as arguments or with --file, not both")
    if not names and not file:
        raise click.UsageError("no names: give some as arguments, or use --file FILE ('-' for stdin)")
    from charclf.lines import too_long

    clf = _predictor(checkpoint, device, threads, batch=bool(file))
    options = {"k": k, "min_confidence": min_confidence,
               **_uncertainty_options(clf, coverage=coverage, prior=prior, full_names=full_names)}
    lines = ((i, name, too_long(name)) for i, name in enumerate(names, start=1)) if names else _read_lines(file)
    failed = total = 0
    chunk = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= batch_size:
            failed += _predict_chunk(clf, chunk, options, as_json)
            total += len(chunk)
            chunk = []
    failed += _predict_chunk(clf, chunk, options, as_json)
    total += len(chunk)
    if failed:
        click.echo(f"Error: {failed} of {total} lines could not be read", err=True)
        sys.exit(1)


def _uncertainty_options(clf, coverage: float | None, prior: str | None, full_names: bool) -> dict:
    """predict's --coverage, --prior and --full-name as Classifier.predict's options, checked
    before any name is read (usage errors: exit 2; a checkpoint without label sets: exit 1)."""
    options = {"full_names": full_names}
    if coverage is None and prior in (None, "train"):
        return options
    if coverage is not None and prior not in (None, "train"):
        raise click.UsageError("--coverage and --prior cannot be combined: label sets keep their coverage "
                               "for the training population only")
    if not hasattr(clf, "set_threshold"):
        raise click.UsageError("--coverage and --prior need the .pt checkpoint (an exported .onnx model "
                               "does not carry label-set scores and training label counts)")
    if coverage is not None:
        clf.set_threshold(coverage)  # a checkpoint without label sets: say so now
    return {**options, "coverage": coverage, "prior": prior}


def _predictor(checkpoint, device: str, threads: int | None, batch: bool):
    """The model to predict with: ONNX Runtime for a .onnx file (no torch), else the torch classifier."""
    from charclf.extras import available
    from charclf.onnx_runtime import OnnxClassifier, is_onnx

    if is_onnx(checkpoint):  # ONNX Runtime, no torch
        if device not in ("auto", "cpu"):
            raise click.UsageError(f"--device {device}: a .onnx model runs on the CPU (ONNX Runtime)")
        return OnnxClassifier.load(checkpoint, threads=_thread_count(threads, batch=batch))
    if not available("torch"):
        raise click.ClickException("predicting from a .pt checkpoint needs torch: pip install 'charclf[torch]' "
                                   "(or predict from an exported model: --checkpoint MODEL.onnx)")
    from charclf.classifier import Classifier

    _use_threads(threads, batch=batch)  # names as arguments: a few, one thread
    return Classifier.load(checkpoint, device=device)


def _predict_chunk(clf, chunk, options: dict, as_json: bool) -> int:
    """Predict one batch of (line number, name, read error); print results; return read errors."""
    from charclf.rows import json_row

    readable = [name for _, name, error in chunk if error is None]
    predictions = iter(clf.predict(readable, **options) if readable else [])
    failed = 0
    width = min(max((len(name) for _, name, _ in chunk), default=0), 30)
    out = []  # stdout, written in one go: one echo per name would cost more than the model
    for number, name, error in chunk:
        if error:
            failed += 1
            if out:  # keep stdout and stderr in input order
                click.echo("\n".join(out))
                out = []
            click.echo(f"{name!r}: {error}", err=True)
            if as_json:
                out.append(json_row(name, error=error, model=clf.model_id))
            continue
        p = next(predictions)
        if as_json:
            out.append(json_row(name, p))
            continue
        if p.abstained:
            answer = f"unknown: {p.reason}"
            if p.top:
                answer += f" (best guess {p.top[0][0]} {p.top[0][1]:.3f})"
        else:
            answer = "  ".join([f"{label} {prob:.3f}" for label, prob in p.top])
        if p.label_set is not None:
            answer += f"  [{options['coverage'] * 100:g}% set: {', '.join(p.label_set)}]"
        if p.as_read == name and not p.caveats:  # the usual case: a printable name, nothing to note
            out.append(f"{name:<{width}}  {answer}")
            continue
        shown = name if name.isprintable() else repr(name)  # one line per name, always
        read = p.family_name.part if p.family_name else name.strip()
        notes = ([f"family name {p.family_name.part}"] if p.family_name and p.family_name.part != name else []) + \
            ([f"read as {p.as_read}"] if p.as_read and p.as_read != read else []) + p.caveats
        out.append(f"{shown:<{width}}  {answer}" + (f"  ({'; '.join(notes)})" if notes else ""))
    if out:
        click.echo("\n".join(out))
    return failed


@main.command()
@click.argument("name")
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Labels shown per letter (and followed across the letters).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="PNG",
              help="Also draw the followed labels' probabilities across the letters into PNG.")
@show_option
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@reports_errors
def explain(name, k, as_json, plot, show, checkpoint, device, threads):
    """Show how the answer for NAME forms, letter by letter.

    For every prefix of the name as the model reads it (H, Hi, Hin, ... Hinton) it prints the
    top labels the model would answer, and then names the letters that changed the final
    label's probability most. All prefixes are encoded as one batch and classified in one
    pass, each as a whole input of its own: this works for every backbone, bidirectional ones
    included. A name in another script is shown as typed and as read (its Latin letters).

    \b
    Examples:
      charclf explain Hinton
      charclf explain Иванов --json
      charclf explain Hinton --plot explain.png
    """
    from charclf.classifier import Classifier
    from charclf.explain import format_explanation

    _use_threads(threads, batch=False)
    result = Classifier.load(checkpoint, device=device).explain(name, k=k)
    if plot:
        from charclf.explain_plot import save_explanation

        _save_plot(lambda path: save_explanation(result, path), plot, show, "letter-by-letter plot",
                   quiet_stdout=as_json)
    click.echo(json.dumps(result, indent=2) if as_json else format_explanation(result))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default answers this machine only; 0.0.0.0 answers anyone "
                   "who can reach it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@checkpoint_option
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Model calls at once, each on one torch thread. Default: $CHARCLF_THREADS, else the free cores.")
@click.option("--max-batch", type=click.IntRange(min=1), default=2048, show_default=True, metavar="N",
              help="Predict requests waiting while the model is busy are answered in one call of up to N "
                   "names (1: each request alone).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True, help="uvicorn's log level (info: one line per request).")
@reports_errors
def serve(host, port, checkpoint, workers, max_batch, device, log_level):
    """Serve the model over HTTP: a web page and a JSON API (needs `pip install 'charclf[serve]'`).

    \b
    GET  /                         the page: type a name, see its labels and how they form
    GET  /api/predict?name=N&top_k=3[&min_confidence=P]   one name, as `charclf predict --json`
    POST /api/predict?top_k=3      a JSON list of names (at most 1000) -> a list of the same
    GET  /api/explain?name=N&top_k=3   as `charclf explain --json`
    GET  /api/model                labels, backbone, metrics, versions
    GET  /healthz                  {"status": "ok"}

    The model is loaded once. Bad requests get a 4xx JSON {"error": ...}.

    \b
    Example:
      charclf serve --port 8000   # then open http://127.0.0.1:8000/
    """
    from charclf.classifier import Classifier
    from charclf.serve import require_extra, run_server
    from charclf.threads import thread_count

    require_extra()
    _use_threads(1)  # one torch thread per model call; --workers of them at once
    try:
        workers = thread_count(workers)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    clf = Classifier.load(checkpoint, device=device)
    shown = f"[{host}]" if ":" in host else host
    ready = f"serving {clf.path} on http://{shown}:{port}/ with {workers} worker(s); Ctrl-C stops"
    run_server(clf, host, port, workers, max_batch, log_level, on_ready=lambda: click.echo(ready, err=True))


@main.group()
def data():
    """Get the names dataset."""


@data.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("data/names"),
              show_default=True, help="Folder to put the <Label>.txt files in.")
@click.option("--url", default=None, help="Archive to download. Default: the PyTorch tutorial's data.zip.")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="sha256sum-style checksums to verify against. Default: the ones charclf ships.")
@click.option("--force", is_flag=True, help="Replace an existing, non-empty --dest.")
@verbosity_options("Also print the address downloaded and every file installed.")
@reports_errors
def fetch(dest, url, manifest, force, verbosity):
    """Download the tutorial's names archive, verify every file, then move it into place.

    Nothing is written unless every file's checksum matches; a failed or corrupted
    download leaves no partial folder behind.

    \b
    Example:
      charclf data fetch --dest data/names
    """
    from charclf.fetch import OFFICIAL_URL, fetch_dataset

    say(verbosity, f"downloading {url or OFFICIAL_URL}", VERBOSE)
    installed = fetch_dataset(dest, url=url or OFFICIAL_URL, manifest=manifest, force=force,
                              progress=show_progress(verbosity))
    for name in installed:
        say(verbosity, f"  {dest / name}", VERBOSE)
    click.echo(f"verified and installed {len(installed)} files into {dest}")


# `charclf export` and `charclf info` live in their own module (cli_models imports this one).
from charclf.cli_models import export, info  # noqa: E402

main.add_command(export)
main.add_command(info)
