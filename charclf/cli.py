"""The `charclf` command: parses options, calls the library, prints. Heavy imports (torch,
matplotlib) happen inside the commands that need them, so `charclf --help` stays fast."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from charclf.cliparams import FiniteFloatRange
from charclf.console import VERBOSE, run_log, say, show_progress, verbosity_options
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
      charclf train               # a bidirectional GRU with spelling heads, best epoch kept on validation
      charclf compare             # GRU, LSTM, plain RNN and the n-gram baseline side by side
      charclf evaluate            # held-out accuracy, macro-F1, calibration, per-label scores, confusion
      charclf predict Hinton Satoshi Иванов
      charclf predict Jones --min-confidence 0.5   # `unknown` when the model is unsure
    """


def per_arch(field: str) -> str:
    """Help text naming each recurrent backbone's default for `field`."""
    values = {arch: default_of(arch, field) for arch in ARCHS}
    flags = {"bidirectional": ("bidirectional", "unidirectional"), "lowercase": ("lowercase", "case-sensitive"),
             "refit": ("refit", "no-refit")}
    shown = {arch: flags[field][0 if value else 1] if isinstance(value, bool)
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


def precision_option(command):
    from charclf.precision import ENV, PRECISIONS

    return click.option(
        "--precision", type=click.Choice(PRECISIONS), envvar=ENV, show_envvar=True, default="float32",
        show_default=True,
        help="The network's matrix products in float32, or in bfloat16: faster on a CPU with bfloat16 "
             "instructions, the same test accuracy, probabilities that differ in the third decimal "
             "(README, \"Precision\"). auto: bfloat16 on such a CPU, else float32.",
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
@click.option("--members", type=click.IntRange(1, MODEL_LIMITS["members"]),
              help="Train this many networks side by side and average their probabilities: more accurate, "
                   "and as many times slower to train and to predict. " + per_arch("members"))
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
                   "(0: no): through the spelling heads, else through two layers the saved model drops. "
                   + per_arch("next_letter_weight"))
@click.option("--refit/--no-refit", default=None,
              help="While training on the training names (which choose the epoch, the temperature and the "
                   "label sets on validation), train the same network on train + validation in a second "
                   "process, and save that one at the chosen epoch: more accurate, the threads shared between "
                   "the two. " + per_arch("refit"))
@click.option("--spelling-weight", type=FiniteFloatRange(min=0),
              help="Spelling heads: each language's log-probability of the name's letters, read off the "
                   "network's own states, times this weight, is added to the answer (0: none). "
                   + per_arch("spelling_weight"))
@click.option("--spelling-rank", type=click.IntRange(1, MODEL_LIMITS["spelling_rank"]),
              help="Width the spelling heads read each letter's states through. " + per_arch("spelling_rank"))
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
    all letters (mean and max), then a linear layer, plus spelling heads on the same states:
    each language's log-probability of the name's letters, weighted, joins the answer. Nothing
    else is inside it. While training it also learns to predict each next letter (through the
    spelling heads), and the weights kept are a moving average over the training steps. lstm
    and rnn change a few of its settings; options given here win. --model ngram trains the
    classical baseline instead: a logistic regression over character 1-5-grams, no network.

    A folder's names are folded to ASCII, deduplicated and split 80/10/10 on unique names (no name
    text in two splits). The checkpoint with the best validation accuracy (macro-F1 breaking
    ties) is kept at --out, with its metric history (.history.json) and curves (.curves.png)
    beside it. Meanwhile a second process trains the same network on train + validation
    (--refit); at the end its weights at that epoch are saved, with the first run's validation
    scores and temperature (--no-refit: the first run's weights). After every epoch the run's
    state (.state.pt) is saved too: an interrupted run
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
        if arch == "ngram" and options.get("members") not in (None, 1):
            raise click.UsageError("--members: the n-gram baseline is one model (use it with gru, lstm or rnn)")
        model_options, config = defaults_for(arch, seed=seed, **options)
        say(verbosity, _settings_line({"arch": arch, **model_options}, config), VERBOSE)
        result = training.train(resolve_data_dir(data), out, arch=arch, model_options=model_options, config=config,
                                device=device, progress=progress, log=log, force=force)
    if is_main_process():  # rank 0 reports for all
        _report_trained(arch, out, result)


def _report_trained(arch: str, out: Path, result) -> None:
    """What a finished run prints: where the model went, its scores, its history files."""
    from charclf.training import history_paths

    m = result.metrics
    base = m["test_majority_baseline"]
    click.echo(f"saved {arch} model to {out} (best epoch {m['best_epoch']} of {m['epochs_run']}, "
               f"{m['train_seconds']:.1f} s of training, {m['parameters']:,} parameters)")
    refitted = "refit" in m  # validation scores are then the first run's (charclf.refit)
    click.echo(f"validation: accuracy {m['val']['accuracy']:.4f}  macro-F1 {m['val']['macro_f1']:.4f}"
               + ("  (the network trained on train alone, which chose the epoch)" if refitted else ""))
    click.echo(f"test:       accuracy {m['test']['accuracy']:.4f}  macro-F1 {m['test']['macro_f1']:.4f}  "
               f"(always-{base['label']} baseline: accuracy {base['accuracy']:.4f})")
    if refitted:
        alone = m["first_run"]["test"]
        click.echo(f"refit:      trained on train + validation ({m['refit']['pairs']} pairs); trained on train "
                   f"alone, test accuracy {alone['accuracy']:.4f}  macro-F1 {alone['macro_f1']:.4f}")
    history, curves = history_paths(result.checkpoint)
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


def _evaluation(checkpoint, data, split, device, precision, **options):
    """Load the model and score it on one split of its dataset."""
    from charclf.classifier import Classifier
    from charclf.locations import resolve_data_dir

    clf = Classifier.load(checkpoint, device=device, precision=precision)
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
@precision_option
@reports_errors
def evaluate(checkpoint, data, split, min_confidence, plot, out, show, prior, as_json, device, threads, precision):
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

    clf, result = _evaluation(checkpoint, data, split, device, precision, prior=prior,
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
@precision_option
@reports_errors
def calibration(checkpoint, data, split, bins, plot, out, show, as_json, device, threads, precision):
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
    clf, result = _evaluation(checkpoint, data, split, device, precision, bins=bins)
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
@precision_option
@_needs_plotting
@reports_errors
def confusion(checkpoint, data, split, normalize, plot, out, show, device, threads, precision):
    """Show which labels the model mistakes for which (rows: true, columns: predicted).

    \b
    Examples:
      charclf confusion --normalize
      charclf confusion --plot --out confusion.png
    """
    _use_threads(threads)
    from charclf.metrics import format_confusion

    clf, result = _evaluation(checkpoint, data, split, device, precision)
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

# `charclf predict`, `explain` and `serve` live in their own modules (each imports this one).
from charclf.cli_predict import predict  # noqa: E402
from charclf.cli_serve import explain, serve  # noqa: E402

main.add_command(predict)
main.add_command(explain)
main.add_command(serve)
