"""The `charclf` command: parses options, calls the library, prints. Heavy imports (torch,
matplotlib) happen inside the commands that need them, so `charclf --help` stays fast."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from charclf.config import ARCH_DEFAULTS, ARCHS, CLASS_WEIGHTINGS, POOLINGS, ModelConfig, TrainConfig, defaults_for
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
            error = click.ClickException(str(e))
            error.exit_code = getattr(e, "exit_code", 1)
            raise error from None

    return wrapper


def checkpoint_option(command):
    return click.option(
        "--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
        help="Checkpoint file. Default: the model `charclf train` last wrote to its default place, "
             "else the pretrained model that ships with charclf.",
    )(command)


def data_option(default_help: str):
    return click.option(
        "--data", type=click.Path(file_okay=False, path_type=Path),
        help=f"Folder of <Label>.txt files. Default: {default_help}.",
    )


TRAIN_DATA_DEFAULT = "$CHARCLF_DATA, else ./data/names"
MODEL_DATA_DEFAULT = "$CHARCLF_DATA, else the folder the model was trained on, else ./data/names"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="charclf")
def main():
    """Guess a name's language of origin from its spelling with a character-level RNN.

    \b
    Typical session:
      charclf data fetch          # the 18-language names dataset into ./data/names
      charclf train               # a bidirectional GRU, best checkpoint kept on validation
      charclf evaluate            # held-out accuracy, macro-F1, per-label scores, confusion
      charclf predict Hinton Satoshi
    """


def per_arch(field: str) -> str:
    """Help text naming each backbone's tuned default for `field`."""
    values = {arch: ARCH_DEFAULTS[arch].get(field, getattr(TrainConfig, field, None)) for arch in ARCHS}
    shown = {arch: ("bidirectional" if value else "unidirectional") if isinstance(value, bool)
             else f"{value:g}" if isinstance(value, (int, float)) else value for arch, value in values.items()}
    return "[default: " + ", ".join(f"{arch} {value}" for arch, value in shown.items()) + "]"


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--arch", type=click.Choice(ARCHS), default="gru", show_default=True, help="Recurrent backbone.")
@click.option("--hidden-size", type=click.IntRange(min=1), help=per_arch("hidden_size"))
@click.option("--num-layers", type=click.IntRange(min=1), default=ModelConfig.num_layers, show_default=True)
@click.option("--bidirectional/--unidirectional", default=None, help=per_arch("bidirectional"))
@click.option("--embedding-dim", type=click.IntRange(min=0), default=ModelConfig.embedding_dim, show_default=True,
              help="Letter embedding width (0: one-hot letters straight into the RNN).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=ModelConfig.dropout, show_default=True)
@click.option("--pooling", type=click.Choice(POOLINGS), default=ModelConfig.pooling, show_default=True,
              help="Name vector: last states, max over letters, or both.")
@click.option("--epochs", type=click.IntRange(min=1), help=per_arch("epochs"))
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate of the one-cycle schedule. " + per_arch("lr"))
@click.option("--weight-decay", type=click.FloatRange(min=0), default=TrainConfig.weight_decay, show_default=True)
@click.option("--class-weighting", type=click.Choice(CLASS_WEIGHTINGS),
              help="Weigh rare labels more in the loss. " + per_arch("class_weighting"))
@click.option("--ngram-buckets", type=click.IntRange(min=0),
              help="Hash buckets of the character n-gram part beside the RNN (0: none). " + per_arch("ngram_buckets"))
@click.option("--ngram-c", type=click.FloatRange(min=0, min_open=True), default=TrainConfig.ngram_c,
              show_default=True, help="Inverse L2 strength of the n-gram part's logistic regression.")
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True,
              help="Seeds the split, the initial weights and the batch order.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write. Default: $CHARCLF_HOME/model.pt (~/.local/share/charclf/model.pt), "
                   "the model evaluate, confusion and predict use without --checkpoint.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run saved beside --out, with its own settings.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars (stderr).")
@click.pass_context
@reports_errors
def train(ctx, data, arch, hidden_size, num_layers, bidirectional, embedding_dim, dropout, pooling, epochs,
          batch_size, lr, weight_decay, class_weighting, ngram_buckets, ngram_c, seed, device, out, resume, progress):
    """Train a classifier on a folder of <Label>.txt files.

    Each backbone starts from its own tuned defaults (hidden size, epochs, learning rate);
    options given here win.

    The names are folded to ASCII, deduplicated and split 80/10/10 on unique names (no name
    text in two splits). The checkpoint with the best validation accuracy + macro-F1 is kept at --out,
    with its metric history (.history.json) and curves (.curves.png) beside it. After every
    epoch the run's state (.state.pt) is saved too: an interrupted run (Ctrl-C, a kill, a
    crash) continues with --resume and ends as if it had never stopped.

    \b
    Examples:
      charclf train --arch lstm --epochs 15 --out runs/lstm.pt
      charclf train --out runs/lstm.pt --resume
    """
    from charclf.locations import default_checkpoint, resolve_data_dir
    from charclf import training

    out = out or default_checkpoint()
    if resume:
        state = training.load_training_state(out)
        _check_resume_options(ctx, {**state["model_config"], **state["train_config"]})
        data_dir = resolve_data_dir(data, fallback=state["data_dir"])
        result = training.resume(out, data_dir=data_dir, device=device, progress=progress, state=state)
        arch = state["model_config"]["arch"]
    else:
        options, config = defaults_for(
            arch, hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
            embedding_dim=embedding_dim, dropout=dropout, pooling=pooling, epochs=epochs, batch_size=batch_size,
            lr=lr, weight_decay=weight_decay, class_weighting=class_weighting, ngram_buckets=ngram_buckets,
            ngram_c=ngram_c, seed=seed,
        )
        result = training.train(resolve_data_dir(data), out, arch=arch, model_options=options, config=config,
                                device=device, progress=progress)
    m = result.metrics
    base = m["test_majority_baseline"]
    click.echo(f"saved {arch} model to {out} (best epoch {m['best_epoch']} of {m['epochs_run']}, "
               f"{m['train_seconds']:.1f} s of training)")
    click.echo(f"validation: accuracy {m['val']['accuracy']:.4f}  macro-F1 {m['val']['macro_f1']:.4f}")
    click.echo(f"test:       accuracy {m['test']['accuracy']:.4f}  macro-F1 {m['test']['macro_f1']:.4f}  "
               f"(always-{base['label']} baseline: accuracy {base['accuracy']:.4f})")
    history, curves = training.history_paths(result.checkpoint)
    click.echo(f"history: {history}  curves: {curves}")


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--archs", default=",".join(ARCHS), show_default=True, help="Backbones to train, comma-separated.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs for every backbone. Default: each one's own.")
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/compare"),
              show_default=True, help="Where the checkpoints, compare.json and compare.png go.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars (stderr).")
@reports_errors
def compare(data, archs, epochs, seed, device, out_dir, progress):
    """Train several backbones with their defaults on the same split and compare them.

    Prints a table (test accuracy, macro-F1, parameters, training seconds) and draws their
    validation curves side by side in one PNG: see how the gated cells (LSTM, GRU) fare
    against the plain RNN on the same names.

    \b
    Example:
      charclf compare --archs rnn,gru --epochs 10
    """
    from charclf import training
    from charclf.files import atomic_write
    from charclf.locations import resolve_data_dir
    from charclf.plots import plot_comparison

    chosen = [a.strip() for a in archs.split(",") if a.strip()]
    unknown = sorted(set(chosen) - set(ARCHS))
    if unknown or not chosen:
        raise click.BadParameter(f"choose from {', '.join(ARCHS)}, got {archs!r}", param_hint="--archs")
    data_dir = resolve_data_dir(data)
    results = {}
    for arch in chosen:
        options, config = defaults_for(arch, epochs=epochs, seed=seed)
        results[arch] = training.train(data_dir, out_dir / f"{arch}.pt", arch=arch, model_options=options,
                                       config=config, device=device, progress=progress)
    rows = [{"arch": arch, "test_accuracy": r.metrics["test"]["accuracy"], "test_macro_f1": r.metrics["test"]["macro_f1"],
             "parameters": r.metrics["parameters"], "train_seconds": r.metrics["train_seconds"],
             "best_epoch": r.metrics["best_epoch"], "epochs": r.metrics["epochs_run"], "checkpoint": str(r.checkpoint)}
            for arch, r in results.items()]
    atomic_write(out_dir / "compare.json", lambda f: f.write(json.dumps(rows, indent=2).encode()))
    plot_comparison({arch: r.history for arch, r in results.items()}, out_dir / "compare.png")
    click.echo(f"{'arch':<6} {'test acc':>8} {'macro-F1':>8} {'parameters':>10} {'seconds':>8} {'best epoch':>10}")
    for row in rows:
        click.echo(f"{row['arch']:<6} {row['test_accuracy']:>8.4f} {row['test_macro_f1']:>8.4f} {row['parameters']:>10,} "
                   f"{row['train_seconds']:>8.1f} {str(row['best_epoch']) + '/' + str(row['epochs']):>10}")
    click.echo(f"checkpoints and compare.json in {out_dir}; validation curves: {out_dir / 'compare.png'}")


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


def _evaluation(checkpoint, data, split, device):
    """Load the model and score it on one split of its dataset."""
    from charclf.classifier import Classifier
    from charclf.locations import resolve_data_dir

    clf = Classifier.load(checkpoint, device=device)
    recorded = clf.checkpoint.train_config.get("data_dir")
    result = clf.evaluate(resolve_data_dir(data, fallback=recorded), split)
    if not result["same_data_as_training"]:
        click.echo(
            f"warning: the dataset at {result['data_dir']} differs from the one this model was trained "
            "on, so this split may hold names it saw in training", err=True,
        )
    return clf, result


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@reports_errors
def evaluate(checkpoint, data, split, as_json, device):
    """Score a model on a split of its dataset, re-made exactly as at training time.

    Prints accuracy, macro-F1 (mean F1 over labels), the always-majority baseline,
    per-label precision/recall/F1/support, and the confusion matrix.

    \b
    Example:
      charclf evaluate --split val --json
    """
    from charclf.metrics import format_confusion, format_per_label

    clf, result = _evaluation(checkpoint, data, split, device)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(clf.path), "labels": clf.labels, **result}, indent=2))
        return
    base = result["majority_baseline"]
    click.echo(f"{clf.path}: {split} split of {result['data_dir']} ({result['n']} names)")
    click.echo(f"accuracy  {result['accuracy']:.4f}   (always-{base['label']} baseline {base['accuracy']:.4f})")
    click.echo(f"macro-F1  {result['macro_f1']:.4f}\n")
    click.echo(format_per_label(result) + "\n")
    click.echo(format_confusion(result["confusion"], clf.labels))


@main.command()
@checkpoint_option
@data_option(MODEL_DATA_DEFAULT)
@click.option("--split", type=SPLIT_CHOICE, default="test", show_default=True)
@click.option("--normalize", is_flag=True, help="Text matrix as shares of each true label's names.")
@click.option("--plot", is_flag=True, help="Draw the row-normalised matrix as a PNG.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write: the PNG with --plot (default confusion.png), else the text matrix.")
@click.option("--show/--no-show", default=None,
              help="Open the plot in a window. Default: when a display and a terminal exist.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@reports_errors
def confusion(checkpoint, data, split, normalize, plot, out, show, device):
    """Show which labels the model mistakes for which (rows: true, columns: predicted).

    \b
    Examples:
      charclf confusion --normalize
      charclf confusion --plot --out confusion.png
    """
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
    from charclf.plots import display_available, save_confusion, show_png

    out = out or Path("confusion.png")
    title = f"{clf.checkpoint.model_config.arch} on the {split} split: accuracy {result['accuracy']:.3f}"
    try:
        save_confusion(result["confusion"], clf.labels, out, title)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from None
    click.echo(table)
    click.echo(f"saved the confusion plot to {out}")
    if show if show is not None else (display_available() and sys.stdin.isatty() and sys.stdout.isatty()):
        show_png(out)


def _write_text(path: Path, text: str) -> None:
    from charclf.files import atomic_write

    try:
        atomic_write(path, lambda f: f.write(text.encode()))
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


def _read_lines(file: Path | str):
    """Yield (line number, text, error or None) from a file or '-' (stdin), streaming.

    A line that is not valid UTF-8 is reported by number; it does not stop the others.
    """
    stream = sys.stdin.buffer if str(file) == "-" else None
    try:
        handle = stream or open(file, "rb")
    except OSError as e:
        raise click.ClickException(f"cannot read {file}: {e.strerror or e}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            raw = raw.rstrip(b"\r\n")
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError:
                yield number, raw.decode("utf-8", errors="replace"), f"line {number} is not valid UTF-8"


@main.command()
@click.argument("names", nargs=-1)
@click.option("-k", "--top", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many labels to show per name.")
@click.option("--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read names from FILE, one per line ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per name and line (JSON Lines, ASCII-escaped).")
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Names per batch when reading a file.")
@reports_errors
def predict(names, k, file, as_json, checkpoint, device, batch_size):
    """Predict the likeliest languages of NAMES, with probabilities.

    Names come from the arguments, or from --file (one per line; '-' or a lone '-' argument
    reads stdin). A name with no letters the model can read (after folding to its alphabet)
    or an undecodable line gets its own error, on stderr (or in its JSON object), and the
    others are still predicted; the exit code is then 1.

    \b
    Examples:
      charclf predict Hinton Satoshi -k 5
      charclf predict --file names.txt --json > predictions.jsonl
    """
    if names == ("-",) and not file:
        names, file = (), "-"
    if names and file:
        raise click.UsageError("give names as arguments or with --file, not both")
    if not names and not file:
        raise click.UsageError("no names: give some as arguments, or use --file FILE ('-' for stdin)")
    from charclf.classifier import Classifier

    clf = Classifier.load(checkpoint, device=device)
    lines = ((i, name, None) for i, name in enumerate(names, start=1)) if names else _read_lines(file)
    failed = total = 0
    chunk = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= batch_size:
            failed += _predict_chunk(clf, chunk, k, as_json, from_file=bool(file))
            total += len(chunk)
            chunk = []
    failed += _predict_chunk(clf, chunk, k, as_json, from_file=bool(file))
    total += len(chunk)
    if failed:
        click.echo(f"Error: {failed} of {total} names could not be predicted", err=True)
        sys.exit(1)


def _predict_chunk(clf, chunk, k, as_json, from_file) -> int:
    """Predict one batch of (line number, name, read error); print results; return failures."""
    readable = [name for _, name, error in chunk if error is None]
    predictions = iter(clf.predict(readable, k=k))
    failed = 0
    width = min(max((len(name) for _, name, _ in chunk), default=0), 30)
    lines = []  # stdout, written in one go: one echo per name would cost more than the model
    for number, name, error in chunk:
        if error is None:
            p = next(predictions)
            error = p.error and (f"line {number}: {p.error}" if from_file else p.error)
        if error:
            failed += 1
            if lines:  # keep stdout and stderr in input order
                click.echo("\n".join(lines))
                lines = []
            click.echo(f"{name!r}: {error}", err=True)
            if as_json:
                click.echo(json.dumps({"name": name, "error": error}))
            continue
        if as_json:
            lines.append(p.to_json())
        else:
            guesses = "  ".join([f"{label} {prob:.3f}" for label, prob in p.top])
            shown = name if name.isprintable() else repr(name)  # one line per name, always
            lines.append(f"{shown:<{width}}  {guesses}")
    if lines:
        click.echo("\n".join(lines))
    return failed


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
@reports_errors
def fetch(dest, url, manifest, force):
    """Download the tutorial's names archive, verify every file, then move it into place.

    Nothing is written unless every file's checksum matches; a failed or corrupted
    download leaves no partial folder behind.

    \b
    Example:
      charclf data fetch --dest data/names
    """
    from charclf.fetch import OFFICIAL_URL, fetch_dataset

    installed = fetch_dataset(dest, url=url or OFFICIAL_URL, manifest=manifest, force=force, progress=True)
    click.echo(f"verified and installed {len(installed)} files into {dest}")
