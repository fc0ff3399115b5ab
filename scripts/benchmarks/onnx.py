"""The light install against torch, in one run: the shipped model's .onnx on ONNX Runtime (what
`charclf predict` uses by default) and its .pt on torch (`--backend torch`).

1. Agreement on the whole test split (the shipped model's split seed, charclf's own split code):
   top-1 labels and the largest gap between probabilities.
2. `charclf predict --file` names/s on --names different name-like strings, start-up excluded (a run
   on all of them less a run on one), for both backends on 1 and 2 threads, taking turns.
3. Wall time in a fresh process: `charclf predict Jones` on each backend and `charclf --help`, with
   bare Python and the imports they pay for, for scale; --runs each, taking turns; best and median.
4. With --sizes: the built wheel installed into a fresh virtual environment (no torch), its size on
   disk, against this environment's.

    python scripts/benchmark.py onnx [--runs 9] [--names 200000] [--sizes] [--json FILE] [--markdown FILE]

--markdown puts the results into that file as its section between the markers
<!-- benchmark_onnx.py: begin --> and <!-- benchmark_onnx.py: end --> (replacing an earlier one;
appended if there is none).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    BUSY_NOTE,
    charclf_script,
    data_dir,
    dataset_lines,
    distinct_names,
    in_fresh_processes,
    load_average,
    md_table,
    predict_file_rates,
    rate_text,
    replace_between,
    shown_command,
    thread_env,
    utc_now,
)

BACKENDS = {"onnx": "ONNX Runtime (.onnx, the default)", "torch": "torch (.pt, `--backend torch`)"}
THREADS = (1, 2)
# The markers of its section in docs/benchmarks.md (named after the script this mode once was).
BEGIN, END = "<!-- benchmark_onnx.py: begin -->", "<!-- benchmark_onnx.py: end -->"
TITLE = "## Light inference: ONNX Runtime against torch"


def agreement(data: Path) -> dict:
    """The shipped model's two files on its whole test split."""
    import charclf
    from charclf.data.dataset import load_dataset, split_dataset

    light, full = charclf.load(backend="onnx"), charclf.load(backend="torch")
    seed = full.checkpoint.train_config.get("seed", 0)
    test = [name for name, _ in split_dataset(load_dataset(data), seed=seed)["test"]]
    p, q = light.probabilities(test), full.probabilities(test)
    return {"names": len(test), "seed": seed, "same_top1": int((p.argmax(1) == q.argmax(1)).sum()),
            "max_probability_gap": float(abs(p - q).max())}


def file_rates(names: list[str], runs: int) -> dict[str, dict[int, float]]:
    """{backend: {threads: names/s}} of `charclf predict --file` on the shipped model."""
    with tempfile.TemporaryDirectory() as work:
        return {backend: {threads: predict_file_rates(names, Path(work), threads, runs=runs, backend=backend)["float32"]
                          for threads in THREADS} for backend in BACKENDS}


def wall_times(runs: int) -> dict[str, list[float]]:
    charclf = charclf_script()
    commands = {"`charclf predict Jones` (ONNX Runtime)": [charclf, "predict", "Jones"],
                "`charclf predict Jones --backend torch`": [charclf, "predict", "Jones", "--backend", "torch"],
                "`charclf --help`": [charclf, "--help"],
                # What the machine gives any Python program, for scale.
                'python -c "pass"': [sys.executable, "-c", "pass"],
                'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
                'python -c "import onnxruntime"': [sys.executable, "-c", "import onnxruntime"],
                'python -c "import torch"': [sys.executable, "-c", "import torch"]}
    with tempfile.TemporaryDirectory() as home:  # the shipped model, not one `charclf train` wrote
        return in_fresh_processes(commands, runs, thread_env(home=Path(home)))


def install_sizes() -> dict[str, int]:
    """MB on disk: a fresh virtual environment holding the built wheel (core install), and this one."""
    def megabytes(path: Path) -> int:
        done = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
        return int(done.stdout.split()[0])

    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "build", "-q", "--wheel", "--outdir", work, str(root)], check=True,
                       capture_output=True)
        venv = Path(work) / "light"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        wheel = next(Path(work).glob("charclf-*.whl"))
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True,
                       capture_output=True)
        return {"light (pip install charclf)": megabytes(venv),
                f"this environment ({sys.prefix})": megabytes(Path(sys.prefix))}


def report(args, agree: dict, rates: dict, times: dict, sizes: dict) -> list[str]:
    import onnxruntime
    import torch

    rate_rows = [[label, *(rate_text(rates[backend][t]) for t in THREADS)] for backend, label in BACKENDS.items()]
    time_rows = [[name, f"{min(t):.3f}", f"{statistics.median(t):.3f}"] for name, t in times.items()]
    lines = [
        f"Run {utc_now()} with `{shown_command('onnx', args, 'runs', 'names')}{' --sizes' if sizes else ''}` on "
        f"{os.cpu_count()} cores (load average {load_average()} at the end), Python {platform.python_version()}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}.", "",
        f"Agreement on the test split (split seed {agree['seed']}): the same top label for {agree['same_top1']} of "
        f"{agree['names']} names; largest probability gap {agree['max_probability_gap']:.1e}.", "",
        *md_table(["`charclf predict --file`, start-up excluded", *(f"{t} thread(s), names/s" for t in THREADS)],
                  rate_rows, align="lrr"), "",
        *md_table(["command", "wall time in a fresh process, best (s)", "median (s)"], time_rows, align="lrr"),
    ]
    if sizes:
        lines += ["", *md_table(["virtual environment", "size on disk (MB)"], [[k, str(v)] for k, v in sizes.items()],
                                align="lr")]
    return lines


def run(args) -> None:
    data = data_dir(args.data)
    agree = agreement(data)
    rates = file_rates(distinct_names(dataset_lines(data), args.names), runs=2)
    times = wall_times(args.runs)
    sizes = install_sizes() if args.sizes else {}
    lines = report(args, agree, rates, times, sizes)
    print("\n".join(lines))
    if args.markdown:
        replace_between(args.markdown, BEGIN, END, "\n".join([TITLE, "", *lines, "", BUSY_NOTE]))
    if args.json:
        args.json.write_text(json.dumps({"agreement": agree, "predict_file_names_per_second": rates,
                                         "wall_seconds": times, "sizes_mb": sizes, "load_average": os.getloadavg()},
                                        indent=2) + "\n", encoding="utf-8")
