"""What several benchmark modes share: data, processes, timing, and markdown (no torch imported here)."""

from __future__ import annotations

import os
import random
import re
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Hashable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from charclf.errors import DataError
from charclf.files.locations import HOME_ENV, resolve_data_dir
from charclf.threads import ENV as THREADS_ENV

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "scripts" / "benchmark.py"
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
INFER_SEED = 12345  # distinct_names' draw: the same timed names in every mode and run
STARTUP_NOISE = 0.1  # a run on N names must outlast a run on one by this share of it to be timed
BUSY_NOTE = ("Measured on a shared, busy machine (see the load average): compare the rows with each other, "
             "as ratios, not with other runs.")


class UsageError(Exception):
    """Options that do not go together, found when the mode starts: the driver reports it as argparse would."""


def data_dir(given: Path | None) -> Path:
    """--data, else $CHARCLF_DATA, else ./data/names (charclf's own rule, resolve_data_dir), absolute."""
    try:
        return resolve_data_dir(given).resolve()
    except DataError as e:
        raise SystemExit(f"Error: {e}") from None


def dataset_lines(data: Path) -> list[str]:
    """Every non-empty raw line of the dataset's <Label>.txt files, in file order."""
    from charclf.data.dataset import read_label_file

    return [line for path in sorted(data.glob("*.txt")) if path.is_file() for line in read_label_file(path) if line]


def distinct_names(lines: list[str], n: int) -> list[str]:
    """n different name-like strings for timing: the first half of one raw dataset line (drawn at
    random) joined to the second half of another, as long as real names and in their letters, but
    never repeated (charclf runs a repeated name once, which would time nothing)."""
    if not lines:
        raise SystemExit("Error: no names to draw from: give --data DIR or set $CHARCLF_DATA")
    firsts, seconds = {a[: len(a) // 2] for a in lines}, {b[len(b) // 2 :] for b in lines}
    if len(firsts) * len(seconds) < 2 * n:  # the draws below would take forever to find the last ones
        raise SystemExit(f"Error: {len(lines):,} dataset lines make too few different names for {n:,}: "
                         "ask for fewer names or give a larger --data")
    rng, seen = random.Random(INFER_SEED), set()
    while len(seen) < n:
        a, b = rng.choice(lines), rng.choice(lines)
        seen.add(a[: len(a) // 2] + b[len(b) // 2 :])
    names = sorted(seen)
    rng.shuffle(names)
    return names


def thread_env(threads: int | None = None, omp: bool = True, home: Path | None = None) -> dict[str, str]:
    """This environment for a child process: charclf's thread variable (and OpenMP's, with `omp`) set
    to `threads`; with `home`, charclf's home pointed there (an empty one: the shipped model answers)."""
    env = {k: v for k, v in os.environ.items() if threads is None or k != "OMP_NUM_THREADS"}
    if threads is not None:
        env.update({THREADS_ENV: str(threads), **({"OMP_NUM_THREADS": str(threads)} if omp else {})})
    return {**env, HOME_ENV: str(home)} if home is not None else env


def run_quietly(command: list[str], env: dict[str, str] | None = None) -> None:
    """Run `command` with its output dropped; a failure ends the benchmark with the end of its stderr."""
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise SystemExit(f"Error: `{shlex.join(command)}` failed (exit {done.returncode}):\n"
                         f"{done.stderr.decode(errors='replace')[-1000:]}")


def taking_turns(jobs: dict[Hashable, Callable[[], object]], rounds: int) -> dict[Hashable, list[float]]:
    """Each job's wall seconds in `rounds` rounds, taking turns: a busy moment of the machine hits all alike."""
    times: dict[Hashable, list[float]] = {key: [] for key in jobs}
    for _ in range(rounds):
        for key, job in jobs.items():
            started = time.perf_counter()
            job()
            times[key].append(time.perf_counter() - started)
    return times


def in_fresh_processes(commands: dict[str, list[str]], runs: int, env: dict[str, str] | None = None) -> dict:
    """{name: [wall seconds]} of each command run `runs` times in a fresh process, taking turns."""
    return taking_turns({name: partial(run_quietly, command, env) for name, command in commands.items()}, runs)


def charclf_script() -> str:
    """The `charclf` console script beside this Python (what a user runs, start-up included)."""
    path = Path(sys.executable).with_name("charclf")
    if not path.exists():
        raise SystemExit(f"Error: no charclf command beside {sys.executable}: pip install -e . first")
    return str(path)


def predict_file_rates(names: list[str], work: Path, threads: int, precisions: tuple[str, ...] = ("float32",),
                       runs: int = 2, checkpoint: Path | None = None, backend: str = "torch") -> dict[str, float]:
    """{precision: names/s} of `charclf predict --file` once the model is loaded: (N - 1) names over the
    time of a run on all N names less that of a run on one (start-up, imports and loading cancel out),
    each the best of `runs`, the precisions taking turns, with `threads` threads, output dropped, on
    `backend` (torch, or onnx: ONNX Runtime, float32 only).
    No checkpoint: the shipped model (charclf's home pointed at `work`, which holds no model.pt).
    A rate is None where too few names were given to time it (startup_excluded_rate)."""
    files = {"all": work / "timed-names.txt", "one": work / "timed-name.txt"}
    files["all"].write_text("\n".join(names) + "\n", encoding="utf-8")
    files["one"].write_text(names[0] + "\n", encoding="utf-8")
    env = thread_env(threads, home=None if checkpoint else work)
    model = ["--checkpoint", str(checkpoint)] if checkpoint else []
    commands = {(precision, key): [sys.executable, "-m", "charclf", "predict", "--file", str(path), *model,
                                   "--device", "cpu", "--precision", precision, "--backend", backend]
                for precision in precisions for key, path in files.items()}
    jobs = {key: partial(run_quietly, command, env) for key, command in commands.items()}
    best = {key: min(times) for key, times in taking_turns(jobs, runs).items()}
    return {p: startup_excluded_rate(len(names), best[p, "all"], best[p, "one"]) for p in precisions}


def startup_excluded_rate(n: int, all_seconds: float, one_seconds: float) -> float | None:
    """(n - 1) names over the time a run on n names takes beyond a run on one; None (not timed) when
    that extra time is under STARTUP_NOISE of the one-name run: too few names to tell from start-up's noise."""
    extra = all_seconds - one_seconds
    return (n - 1) / extra if extra > STARTUP_NOISE * one_seconds else None


def rate_text(rate: float | None) -> str:
    """Names/s as "27,005", or "-" where too few names were given to time a rate."""
    return "-" if rate is None else f"{rate:,.0f}"


def peak_rss_mb(children: bool = False) -> float:
    """This process's peak resident set size so far (with `children`, plus its largest ended child's), MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def utc_now() -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, as "0.91, 0.94, 0.96"."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def shown_command(mode: str, args, *options: str) -> str:
    """`python scripts/benchmark.py MODE --option value ...`, with the values of `options` in args."""
    shown = lambda value: ",".join(map(str, value)) if isinstance(value, list) else value  # noqa: E731
    given = [f"--{option.replace('_', '-')} {shown(getattr(args, option))}" for option in options]
    return " ".join(["python scripts/benchmark.py", mode, *given])


def md_table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    """A markdown table's lines; `align`: l (---) or r (---:) per column, by default l then all r."""
    align = align or "l" + "r" * (len(header) - 1)
    line = lambda cells: "|" + "".join(f" {cell} |" if cell != "" else " |" for cell in cells)  # noqa: E731
    return [line(header), "|" + "".join("---:|" if a == "r" else "---|" for a in align), *map(line, rows)]


def replace_between(path: Path, begin: str, end: str, text: str) -> None:
    """Put `text` into the file between the markers `begin` and `end` (markers kept), in place of an
    earlier section; appended with its markers if there is none."""
    doc, section = path.read_text(encoding="utf-8") if path.exists() else "", f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        path.write_text(doc[: doc.index(begin)] + section + doc[doc.index(end) + len(end):], encoding="utf-8")
    else:
        path.write_text(doc.rstrip("\n") + "\n\n" + section + "\n", encoding="utf-8")


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace the file's section that starts with the line `heading` (up to the next `## ` heading, the
    next marker comment of another section, or the end) with `text`, which starts with that heading;
    appended if there is none."""
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    text = text.rstrip("\n") + "\n"
    section = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |^<!-- |\Z)", re.S | re.M)
    doc = section.sub(lambda _: text + "\n", doc, count=1) if section.search(doc) else doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc.rstrip("\n") + "\n", encoding="utf-8")
