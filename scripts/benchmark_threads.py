#!/usr/bin/env python
"""How many torch threads to use: `charclf train` (a few epochs) and `charclf predict --file`
timed with 1, 2 and torch's own default thread count, on a quiet machine and on one whose
cores are busy with other work (this script keeps every core busy with spinning processes).

    python scripts/benchmark_threads.py --out docs/threads.md

Each cell is the wall time of the whole command (start-up included), the best of --repeats runs.
torch's default is what charclf used before it chose one thread: torch.get_num_threads() in a fresh
process, with no CHARCLF_THREADS or OMP_NUM_THREADS set.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spin(stop) -> None:
    """Busy work for one core until `stop` is set: another program using the machine."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def torch_default_threads() -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "CHARCLF_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def timed(command: list[str], threads: int, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["CHARCLF_THREADS"] = str(threads)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def measure(commands: dict[str, list[str]], counts: list[int], repeats: int, busy: int) -> dict:
    """{(command, threads): seconds}, with `busy` spinning processes running meanwhile."""
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        return {(name, n): timed(command, n, repeats) for name, command in commands.items() for n in counts}
    finally:
        stop.set()
        for process in spinners:
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA") or "data/names"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each timed training run")
    parser.add_argument("--names", type=int, default=100_000, help="names in the timed predict --file")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write (default: print only)")
    args = parser.parse_args()

    default = torch_default_threads()
    counts = sorted({1, 2, default})
    cores = os.cpu_count() or 1
    charclf = [sys.executable, "-m", "charclf"]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.pt"
        subprocess.run([*charclf, "train", "--data", str(args.data), "--epochs", "1", "--out", str(model),
                        "--no-progress"], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        lines = [line for path in sorted(args.data.glob("*.txt")) for line in path.read_text(encoding="utf-8").split("\n") if line]
        names = Path(tmp) / "names.txt"
        names.write_text("\n".join(random.Random(0).choices(lines, k=args.names)) + "\n", encoding="utf-8")
        commands = {
            f"train --epochs {args.epochs}": [*charclf, "train", "--data", str(args.data), "--epochs", str(args.epochs),
                                              "--out", str(Path(tmp) / "t.pt"), "--no-progress"],
            f"predict --file ({args.names:,} names)": [*charclf, "predict", "--file", str(names), "--checkpoint",
                                                       str(model)],
            "predict Jones": [*charclf, "predict", "Jones", "--checkpoint", str(model)],
        }
        results = {"quiet": measure(commands, counts, args.repeats, 0),
                   f"busy ({cores} spinning processes)": measure(commands, counts, args.repeats, cores)}
    header = "| command | machine | " + " | ".join(
        f"{n} thread{'s' if n > 1 else ''}{' (torch default)' if n == default else ''}" for n in counts) + " |"
    rows = [header, "|---|---|" + "---:|" * len(counts)]
    for name in commands:
        for state, times in results.items():
            one = times[(name, 1)]
            cells = [f"{times[(name, n)]:.2f} s" + ("" if n == 1 else f" ({times[(name, n)] / one:.1f}x)") for n in counts]
            rows.append(f"| `charclf {name}` | {state} | " + " | ".join(cells) + " |")
    text = "\n".join([
        "# Threads", "",
        f"Run {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `python scripts/benchmark_threads.py`: "
        f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}. "
        f"Wall seconds of the whole command, best of {args.repeats}; in brackets, the ratio to one thread.", "",
        *rows, ""])
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
