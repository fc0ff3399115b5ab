"""The `charclf` group and what its commands share: options, error reporting, threads, plots.
Commands live one group to a module beside this one (train, evaluate, predict, serve, models, data)
and register themselves on `main`; heavy imports (torch, matplotlib) happen inside them, so
`charclf --help` stays fast."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from charclf.cli.params import THREADS, FilePath, PredictFloat
from charclf.errors import CharclfError
from charclf.printable import printable

DEVICE_HELP = "auto (CUDA when available), cpu, or cuda[:N]."


def reports_errors(command):
    """Library errors become one line `Error: ...` on stderr with exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CharclfError as e:
            error = click.ClickException(_rank_prefix() + printable(str(e)))  # one line, whatever it quotes
            error.exit_code = getattr(e, "exit_code", 1)
            raise error from None
        except ModuleNotFoundError as e:  # an optional dependency is not installed: say which extra
            from charclf.extras import missing_hint

            if missing_hint(e) is None:
                raise
            raise click.ClickException(missing_hint(e)) from None

    return wrapper


def needs_plotting(command):
    """--plot without matplotlib: a one-line error naming the extra, before any work."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from charclf.extras import available, install_hint

        if kwargs.get("plot") and not available("matplotlib"):
            raise click.ClickException(install_hint("matplotlib"))
        return command(*args, **kwargs)

    return wrapper


def _rank_prefix() -> str:
    """Under torchrun with several processes, which one an error line comes from."""
    import os

    if "WORLD_SIZE" not in os.environ:  # not under torchrun: no need to import torch to know
        return ""
    from charclf.training.distributed import rank_prefix

    return rank_prefix()


def checkpoint_option(command):
    return click.option(
        "--checkpoint", type=FilePath(dir_okay=False, path_type=Path),
        help="Model file: a .pt checkpoint (its .onnx export beside it is used when current) "
             "or a .onnx export. Default: the model `charclf train` last wrote to its default place, else the "
             "pretrained model that ships with charclf.",
    )(command)


def data_option(default_help: str):
    return click.option(
        "--data", type=FilePath(path_type=Path),
        help=f"Folder of <Label>.txt files, or a CSV/TSV file of name,label rows (read as a stream). "
             f"Default: {default_help}.",
    )


def prior_option(command):
    return click.option(
        "--prior", metavar="uniform|train|FILE.json",
        help="Reweight the probabilities to another population's label frequencies: uniform (every "
             "label equally common), train (as trained: the default), or a JSON file of label: weight. "
             "The calibrated probabilities are multiplied by weight / training share and renormalised.")(command)


def min_confidence_option(help_text: str):
    return click.option("--min-confidence", type=PredictFloat("min_confidence", min=0, max=1), metavar="P",
                        help=help_text)


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
      charclf lab memory          # why LSTM and GRU have gates: the plain RNN forgets, they remember
    """


def threads_option(command):
    return click.option(
        "--threads", type=THREADS, metavar="N",
        help="CPU threads for torch (for a .onnx model: ONNX Runtime). Default: $CHARCLF_THREADS, else the free "
             "cores (cores less the load average, at least 1; names given as arguments: 1). More threads than "
             "free cores slow torch down many times.",
    )(command)


def precision_option(command):
    from charclf.predict.precision import ENV, PRECISIONS

    return click.option(
        "--precision", type=click.Choice(PRECISIONS), envvar=ENV, show_envvar=True, default="float32",
        show_default=True,
        help="The network's matrix products in float32, or in bfloat16: faster on a CPU with bfloat16 "
             "instructions, the same test accuracy, probabilities that differ in the third decimal. auto: "
             "bfloat16 on such a CPU, else float32.",
    )(command)


def backend_option(command):
    from charclf.config import BACKENDS

    return click.option(
        "--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
        help="Which runtime runs the network. auto: ONNX Runtime on the model's .onnx export when it is there "
             "and current (training writes it beside the .pt; the shipped model has one) and neither a GPU "
             "--device nor bfloat16 is asked for; else torch. The answers are the same.",
    )(command)


def load_model(checkpoint, device: str, precision: str | None, threads: int | None, backend: str, batch: bool):
    """charclf.load for a command, on `threads` (see thread_count; a torch backend is set to them)."""
    from charclf.predict.loading import load

    count = thread_count(threads, batch)
    clf = load(checkpoint, device=device, precision=precision, threads=count, backend=backend)
    if clf.backend.name == "torch":
        import torch

        torch.set_num_threads(count)
    return clf


def use_threads(threads: int | None, batch: bool = True) -> None:
    """charclf.threads.use_threads, a bad value (of $CHARCLF_THREADS) being a usage error."""
    from charclf import threads as thread_settings

    try:
        thread_settings.use_threads(threads, batch)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


def show_option(command):
    return click.option("--show/--no-show", default=None,
                        help="Open the plot in a window. Default: when a display and a terminal exist.")(command)


def save_plot(draw, out: Path, show: bool | None, what: str, quiet_stdout: bool = False) -> None:
    """Call draw(out) to write a PNG; say where `what` went (on stderr when stdout carries JSON);
    open it when asked (or when a screen is there)."""
    from charclf.report.plots import display_available, plain_text, show_png

    try:
        with plain_text():  # names and labels are text, whatever they hold
            draw(out)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from None
    click.echo(f"saved the {what} to {out}", err=quiet_stdout)
    if show if show is not None else (display_available() and sys.stdin.isatty() and sys.stdout.isatty()):
        show_png(out)


def check_out(path: Path | None, kind: str, checkpoint=None, inputs=(), data=None, option: str = "--out",
              twins: bool = True) -> None:
    """charclf.files.outputs.check_output for a command's output, before any work: never the model
    file (given or default, with its .pt/.onnx twin unless `twins` is False: export writes it),
    other `inputs`, or the dataset (`data`, else $CHARCLF_DATA, else ./data/names)."""
    import os

    from charclf.files.locations import DATA_ENV, DEFAULT_DATA, resolve_checkpoint
    from charclf.files.outputs import check_output

    if path is None:
        return
    models = [checkpoint]
    try:
        model = resolve_checkpoint(checkpoint)
        models += [model, *([model.with_suffix(".onnx"), model.with_suffix(".pt")] if twins else [])]
    except CharclfError:
        pass  # no model: the command says so itself
    check_output(path, kind, [*models, *inputs], data or os.environ.get(DATA_ENV) or DEFAULT_DATA, option)


def thread_count(threads: int | None, batch: bool) -> int:
    """charclf.threads.thread_count, a bad value (of $CHARCLF_THREADS) being a usage error."""
    from charclf import threads as thread_settings

    try:
        return thread_settings.thread_count(threads, batch)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
