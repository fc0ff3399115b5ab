"""How much a command says on stderr: -q/--quiet, -v/--verbose, and progress bars only when
stderr is a terminal (never into a log file or a pipe). Results on stdout are not affected."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click

QUIET, NORMAL, VERBOSE = 0, 1, 2
VERBOSITY = "charclf.verbosity"  # where a command that hands -q/-v on keeps it in click's context meta


def verbosity_options(verbose_help: str):
    """-q/--quiet and -v/--verbose; the command receives `verbosity` (QUIET, NORMAL or VERBOSE)."""

    def apply(command):
        @functools.wraps(command)
        def wrapper(*args, quiet: bool, verbose: bool, **kwargs):
            if quiet and verbose:
                raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
            return command(*args, verbosity=QUIET if quiet else VERBOSE if verbose else NORMAL, **kwargs)

        wrapper = click.option("-v", "--verbose", is_flag=True, help=verbose_help)(wrapper)
        return click.option("-q", "--quiet", is_flag=True,
                            help="No progress bars or progress lines on stderr: only results, warnings and "
                                 "errors.")(wrapper)

    return apply


def stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def show_progress(verbosity: int, forced: bool | None = None) -> bool:
    """Progress bars: as --progress/--no-progress say, else when stderr is a terminal and not -q."""
    return forced if forced is not None else verbosity >= NORMAL and stderr_is_terminal()


def say(verbosity: int, line: str, level: int = NORMAL) -> None:
    """A line on stderr when the verbosity is at least `level`."""
    if verbosity >= level:
        click.echo(line, err=True)


def run_log(verbosity: int) -> Callable[[str], None] | None:
    """Where a training run's log lines go: the default (stderr) unless -q, which keeps only warnings."""
    if verbosity > QUIET:
        return None
    return lambda line: click.echo(line, err=True) if line.startswith("warning") else None
