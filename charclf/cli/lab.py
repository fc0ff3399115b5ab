"""`charclf lab`: small experiments that show how recurrent networks remember, and why the LSTM
and the GRU have gates (docs/learn.md). Registered on the `charclf` group (charclf.cli.app.main)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from charclf.cli.app import check_out, main, needs_plotting, reports_errors, save_plot, show_option
from charclf.cli.console import VERBOSE, say, verbosity_options
from charclf.cli.params import THREADS, FilePath, FiniteFloatRange
from charclf.config import ARCHS
from charclf.lab.settings import MemoryConfig

DEFAULTS = MemoryConfig()


@main.group()
def lab():
    """Experiments for learners: see why LSTM and GRU have gates."""


def _numbers(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """--distances 5,10,20 -> (5, 10, 20)."""
    if value is None:
        return None
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: whole numbers separated by commas, e.g. 5,10,20") from None
    if not numbers or min(numbers) < 1 or len(set(numbers)) != len(numbers):
        raise click.BadParameter(f"{value!r}: distinct whole numbers, at least 1")
    return numbers


def _models(ctx, param, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    models = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [m for m in models if m not in ARCHS]
    if unknown or not models or len(set(models)) != len(models):
        raise click.BadParameter(f"{value!r}: some of {', '.join(sorted(ARCHS))}, separated by commas, each once")
    return models


@lab.command()
@click.option("--distances", callback=_numbers, metavar="D,D,...",
              help=f"Distractor letters between the deciding letter and the answer. "
                   f"[default: {','.join(map(str, DEFAULTS.distances))}]")
@click.option("--models", callback=_models, metavar="M,M,...",
              help=f"The backbones, trained alike. [default: {','.join(DEFAULTS.archs)}]")
@click.option("--gate-bias/--no-gate-bias", default=True, show_default=True,
              help=f"Start the LSTM's forget gate and the GRU's update gate at bias {DEFAULTS.gate_bias:+g}, so "
                   "both begin by keeping what they hold (--no-gate-bias: torch's initialisation, and the "
                   "gated networks fail too).")
@click.option("--steps", type=click.IntRange(1, 1_000_000), default=DEFAULTS.steps, show_default=True,
              help="The most training steps per backbone and distance (training stops sooner once one "
                   f"answers {DEFAULTS.target:.0%} of a validation set).")
@click.option("--hidden-size", type=click.IntRange(1, 1024), default=DEFAULTS.hidden_size, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=DEFAULTS.batch_size, show_default=True)
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True, max=1), default=DEFAULTS.lr, show_default=True,
              help="Adam's learning rate.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=DEFAULTS.seed, show_default=True,
              help="The weights and the training sequences (the test sequences: seed + 1).")
@click.option("--threads", type=THREADS, default=1, show_default=True, metavar="N",
              help="torch threads. The networks are small: more threads than one mostly wait for each other.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (with the gradients) instead of the table.")
@click.option("--plot", type=FilePath(dir_okay=False, path_type=Path), metavar="PNG",
              help="Also draw accuracy by distance and the gradient at each time step (log scale) into PNG.")
@show_option
@verbosity_options("Also say each backbone's result at each distance as it finishes.")
@reports_errors
@needs_plotting
def memory(distances, models, gate_bias, steps, hidden_size, batch_size, lr, seed, threads, as_json, plot,
           show, verbosity):
    """Train a plain RNN, an LSTM and a GRU to remember a sequence's first letter.

    Each sequence's label is its first letter (one of 4); then D distractor letters follow, and
    the answer is read from the state after the last one. The three backbones are trained
    alike (one layer, one direction, the same size, steps and seed) at each distance D. The
    table gives their test accuracy; the plain RNN falls to chance where the gated cells still
    answer. It also measures how much gradient reaches each letter, ||d loss / d x_t||, before
    and after training: through a plain RNN it vanishes before it gets back to the first letter.

    \b
    Examples:
      charclf lab memory
      charclf lab memory --plot memory.png
      charclf lab memory --no-gate-bias --distances 10,20   # the gates' biases as torch starts them
    """
    from charclf.cli.app import use_threads
    from charclf.lab.memory import run_memory
    from charclf.lab.text import format_memory

    try:
        config = MemoryConfig(distances=distances or DEFAULTS.distances, archs=models or DEFAULTS.archs,
                              gate_bias=DEFAULTS.gate_bias if gate_bias else 0.0, steps=steps,
                              hidden_size=hidden_size, batch_size=batch_size, lr=lr, seed=seed)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    check_out(plot, "picture", option="--plot")  # before minutes of training
    use_threads(threads)
    result = run_memory(config, threads=threads, progress=lambda row: say(
        verbosity, f"{row['arch']:>4} at distance {row['distance']}: accuracy {row['accuracy']:.3f} after "
                   f"{row['steps']} steps ({row['seconds']:.1f} s)", VERBOSE))
    if plot:
        from charclf.report.lab_plots import save_memory

        save_plot(lambda path: save_memory(result, path), plot, show, "memory plot", quiet_stdout=as_json)
    click.echo(json.dumps(result, indent=2) if as_json else format_memory(result))
