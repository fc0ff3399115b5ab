#!/usr/bin/env python
"""charclf's benchmarks, one program with one mode per measurement:

  python scripts/benchmark.py MODE [options]       # e.g. accuracy --seeds 0,1,2, or startup --runs 9
  python scripts/benchmark.py MODE --help          # what MODE measures, how, and its options

Each mode is a module of scripts/benchmarks/ (the `scripts` mode: native_scripts.py), imported only
when it runs, so that --help starts at once; what several share is in scripts/benchmarks/common.py.
This file only reads the command line and hands it to the mode's run(args).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
try:
    import charclf  # noqa: F401 (cheap: charclf does not import torch until it needs it)
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parent))
if str(HERE) not in sys.path:  # run through runpy or an import: `benchmarks` is beside this file
    sys.path.insert(0, str(HERE))

from charclf.config import TrainConfig  # noqa: E402 (after the path is set)
from charclf.files.locations import DATA_ENV, DEFAULT_DATA  # noqa: E402


def module_of(mode: str) -> str:
    """The mode's module in scripts/benchmarks/ (the `scripts` mode's is native_scripts, not to be
    confused with the scripts/ folder)."""
    return "native_scripts" if mode == "scripts" else mode


def describe(mode: str) -> str:
    """The mode module's docstring, read without importing the module."""
    source = (HERE / "benchmarks" / f"{module_of(mode)}.py").read_text(encoding="utf-8")
    return ast.get_docstring(ast.parse(source)) or mode


def whole(low: int, high: int = 10**12, listed: bool = False):
    """An argparse type: a whole number from `low` to `high`; `listed`: comma-separated ones, each kept
    once, in order."""
    def one(text: str) -> int:
        if not text.strip().lstrip("-").isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low}"
                                             + (f" to {high:,}" if high < 10**12 else ""))
        return int(text)

    def many(text: str) -> list[int]:
        return list(dict.fromkeys(one(part) for part in text.split(",") if part.strip())) or [one(text)]
    return many if listed else one


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The mode's docstring as written, and each option's default after its help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def opt(flag: str, kind=None, default=None, help: str | None = None, **extra) -> tuple[str, dict]:
    """One option: its flag and add_argument's keywords (those given)."""
    given = {"type": kind, "default": default, "help": help, **extra}
    return flag, {key: value for key, value in given.items() if value is not None}


N = whole(1)
HIDDEN = argparse.SUPPRESS  # internal options: for the processes a mode starts, not for people
DATA = opt("--data", Path, help=f"dataset folder (default: ${DATA_ENV}, else ./{DEFAULT_DATA})")
MARKDOWN = opt("--markdown", Path, help="Write the results as a section of this Markdown file.")
# Mode -> its options, in the order --help lists the modes.
OPTIONS = {
    "accuracy": [
        DATA, opt("--seeds", whole(0, listed=True), str(TrainConfig.seed),
                  "split seeds, comma-separated; several give per-seed rows and their mean"),
        opt("--out", Path, help="markdown report to write (default: docs/benchmarks.md; --quick writes nothing "
            "unless --out is given)"),
        opt("--json-out", Path, help="JSON results to write (default: --out's path, suffix .json)"),
        opt("--threads", N, 1, "threads for every system"),
        opt("--only", help="comma-separated systems to run (default: all, listed above)"),
        opt("--extra-names", help="extra training names (charclf train --extra-names: mimesis, or a folder of "
            "<Label>.txt files) for the ...-names systems; every system is then also scored on their "
            "off-distribution set"),
        opt("--extra-weight", float, TrainConfig.extra_weight, "the ...-names systems' --extra-weight"),
        opt("--extra-cap", whole(0), TrainConfig.extra_cap, "their --extra-cap"),
        opt("--extra-ratio", float, TrainConfig.extra_ratio, "their --extra-ratio"),
        opt("--jobs", N, 1, "systems run at once, each in its own process (>1: the time figures share the "
            "machine)"),
        opt("--keep-models", Path, help="copy each charclf model trained (SYSTEM-seedN.pt and its .onnx) into this "
            "folder"),
        opt("--quick", action="store_true", help="tiny settings for a smoke test: 1 epoch per charclf model, and "
            "fewer logistic regression iterations and timed names"),
        # Run one system in this (child) process and print its result as JSON.
        opt("--child", help=HIDDEN), opt("--seed", whole(0), TrainConfig.seed, HIDDEN),
        opt("--workdir", Path, help=HIDDEN)],
    "onnx": [opt("--runs", N, 9, "fresh processes per command"),
             opt("--names", N, 200_000, "different names for `predict --file`"),
             opt("--sizes", action="store_true", help="also build the wheel and measure a fresh light install"),
             DATA, opt("--json", Path, help="Also write the numbers here."), MARKDOWN],
    "precision": [opt("--runs", N, 3, "runs of each `predict --file`, the best kept"),
                  opt("--names", whole(2), 100_000, "different names"), DATA, MARKDOWN],
    "gpu": [DATA, opt("--device", default="cuda", help="where to train and predict (cpu: a smoke test of this mode)"),
            opt("--epochs", N, help="epochs per training (default: each backbone's own)"),
            opt("--names", N, 200_000, "different names predicted in one call"),
            opt("--runs", N, 3, "timed predict calls, the best kept"),
            opt("--quick", action="store_true", help="1 epoch and 2,000 names: a smoke test, not a measurement"),
            MARKDOWN],
    "batch": [opt("--rounds", N, 5, "rounds over every setting"), opt("--names", N, 50_000, "different names"), DATA],
    "startup": [opt("--runs", N, 9, "fresh processes per command"),
                opt("--out", Path, Path("docs/startup.md"), "Markdown file to write")],
    "threads": [DATA, opt("--epochs", N, 2, "epochs of each timed training run"),
                opt("--names", N, 100_000, "names in the timed predict --file"),
                opt("--repeats", N, 2, "runs of each cell, the best kept"),
                opt("--out", Path, help="Markdown file to write (default: print only)")],
    "scale": [
        opt("--data", Path, help=f"folder of <Label>.txt files to draw names from (default: ${DATA_ENV}, else "
            f"./{DEFAULT_DATA})"),
        opt("--lines", whole(1, listed=True), "1000000,5000000", "CSV sizes, comma-separated"),
        opt("--procs", whole(1, listed=True), "1,2", "process counts, comma-separated"),
        opt("--max-steps", N, 400, "training steps per process and run"),
        opt("--work-dir", Path, Path("runs/scale"), "where the CSVs go"),
        opt("--timeout", N, 1800, "seconds one torchrun may take"),
        opt("--out", Path, help="also write the report here (Markdown)"),
        # One torchrun rank: torchrun starts this program with these.
        opt("--worker", action="store_true", help=HIDDEN), opt("--csv", Path, help=HIDDEN),
        opt("--result-dir", Path, help=HIDDEN)],
    "engines": [
        DATA, opt("--rows", N, 1_000_000, "rows of the CSV"),
        opt("--workers", whole(1, listed=True), "1,2", "Spark local[N] and Dask worker counts, comma-separated"),
        opt("--model", Path, help="the .onnx model (default: the shipped one, exported into --work-dir)"),
        opt("--work-dir", Path, Path("runs/engines"), "where the CSV, the model and the outputs go"), MARKDOWN,
        opt("--only", help="comma-separated systems to run: predict, spark, dask (default: all)"),
        # One Dask run, in a process of its own.
        opt("--child", help=HIDDEN), opt("--csv", Path, help=HIDDEN), opt("--out-dir", Path, help=HIDDEN)],
    "scripts": [
        opt("--checkpoint", Path, help="model to score (default: the shipped one)"),
        opt("--names", Path, HERE.parent / "tests/data/native_names.tsv",
            "name, label and script per line, tab-separated (default: tests/data/native_names.tsv)"),
        opt("--data", Path, help="the names dataset, for the test-split calibration (default: none)"),
        opt("--write", action="store_true", help="replace the section '## Names in their own script' of "
            "docs/benchmarks.md")],
    "serve": [
        opt("--clients", whole(1, 1000), 200, "concurrent clients (at most 1000)"),
        opt("--requests", whole(1, 100_000), 20_000, "requests in all (at most 100,000)"),
        opt("--workers", N, help="the server's --workers (default: its own)"),
        opt("--max-batch", N, help="the server's --max-batch (default: its own)"),
        opt("--path", default="/api/predict", choices=["/api/predict", "/api/explain"], help="what to ask"),
        opt("--out", Path, help="Markdown file whose '## Serving under load' section to (re)write")],
    "load": [
        opt("--workers", lambda text: [int(x) for x in text.split(",")], [1, 2], "the server's --workers counts "
            "to measure, comma-separated"),
        opt("--connections", whole(1, 1000), 32, "wrk's open connections (at most 1000)"),
        opt("--requests", whole(100, 1_000_000), 100_000, "single-name GETs per run (and a fifth of it /healthz)"),
        opt("--post-requests", whole(10, 1_000_000), 2_000, "POSTs of 100 names per run"),
        opt("--out", Path, help="Markdown file whose load table (between its markers) to (re)write")],
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__,
                                     formatter_class=HelpFormatter)
    subparsers = parser.add_subparsers(dest="mode", required=True, metavar="MODE",
                                       title="modes (python scripts/benchmark.py MODE --help for each)")
    modes = {}
    for mode, options in OPTIONS.items():
        text = describe(mode)
        modes[mode] = subparsers.add_parser(mode, help=text.splitlines()[0], description=text,
                                            prog=f"benchmark.py {mode}", formatter_class=HelpFormatter)
        for flag, keywords in options:
            modes[mode].add_argument(flag, **keywords)
    return parser, modes


def main(argv: list[str] | None = None) -> int:
    parser, modes = build_parser()
    args = parser.parse_args(argv)
    from benchmarks.common import UsageError

    module = importlib.import_module(f"benchmarks.{module_of(args.mode)}")
    try:
        return module.run(args) or 0
    except UsageError as e:
        modes[args.mode].error(str(e))  # exits with status 2, as argparse does


if __name__ == "__main__":
    sys.exit(main())
