"""How many torch threads to use, on a quiet machine and on a busy one.

`charclf train` (a few epochs) and `charclf predict --file` timed with 1, 2 and torch's own default
thread count, on a quiet machine and on one whose cores are busy with other work (this mode keeps
every core busy with spinning processes).

    python scripts/benchmark.py threads --out docs/threads.md

Each cell is the wall time of the whole command (start-up included), the best of --repeats runs,
the commands and thread counts taking turns. torch's default is what charclf used before it chose
one thread: torch.get_num_threads() in a fresh process, with no CHARCLF_THREADS or OMP_NUM_THREADS set.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
from datetime import datetime
from functools import partial
from pathlib import Path

from charclf.threads import ENV as THREADS_ENV

from benchmarks.common import data_dir, dataset_lines, md_table, run_quietly, taking_turns, thread_env

CHARCLF = [sys.executable, "-m", "charclf"]


def spin(stop) -> None:
    """Busy work for one core until `stop` is set: another program using the machine."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def torch_default_threads() -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", THREADS_ENV)}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def measure(commands: dict[str, list[str]], counts: list[int], repeats: int, busy: int) -> dict:
    """{(command, threads): best seconds}, with `busy` spinning processes running meanwhile."""
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:  # charclf's own thread variable only: OpenMP's unset, as a user's would be
        jobs = {(name, n): partial(run_quietly, command, thread_env(n, omp=False))
                for name, command in commands.items() for n in counts}
        return {key: min(times) for key, times in taking_turns(jobs, repeats).items()}
    finally:
        stop.set()
        for process in spinners:
            process.join()


def timed_commands(args, data: Path, tmp: Path) -> dict[str, list[str]]:
    """The commands to time, on a model trained for one epoch and --names raw dataset lines (drawn with replacement)."""
    model, names = tmp / "model.pt", tmp / "names.txt"
    run_quietly([*CHARCLF, "train", "--data", str(data), "--epochs", "1", "--out", str(model), "--no-progress"])
    names.write_text("\n".join(random.Random(0).choices(dataset_lines(data), k=args.names)) + "\n", encoding="utf-8")
    return {
        f"train --epochs {args.epochs}": [*CHARCLF, "train", "--data", str(data), "--epochs", str(args.epochs),
                                          "--out", str(tmp / "t.pt"), "--no-progress"],
        f"predict --file ({args.names:,} names)": [*CHARCLF, "predict", "--file", str(names), "--checkpoint",
                                                   str(model)],
        "predict Jones": [*CHARCLF, "predict", "Jones", "--checkpoint", str(model)],
    }


def run(args) -> None:
    data = data_dir(args.data)
    default = torch_default_threads()
    counts = sorted({1, 2, default})
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        commands = timed_commands(args, data, Path(tmp))
        results = {"quiet": measure(commands, counts, args.repeats, 0),
                   f"busy ({cores} spinning processes)": measure(commands, counts, args.repeats, cores)}
    header = [f"{n} thread{'s' if n > 1 else ''}{' (torch default)' if n == default else ''}" for n in counts]
    rows = []
    for name in commands:
        for state, times in results.items():
            one = times[(name, 1)]
            rows.append([f"`charclf {name}`", state, *(f"{times[(name, n)]:.2f} s" + (
                "" if n == 1 else f" ({times[(name, n)] / one:.1f}x)") for n in counts)])
    text = "\n".join([
        "# Threads", "",
        f"Run {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `python scripts/benchmark.py threads`: "
        f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}. "
        f"Wall seconds of the whole command, best of {args.repeats}; in brackets, the ratio to one thread.", "",
        *md_table(["command", "machine", *header], rows, align="ll" + "r" * len(counts)), ""])
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
