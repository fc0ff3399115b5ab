#!/usr/bin/env python
"""The shipped model predicting in float32 and in bfloat16 (`--precision`), in one run.

1. Agreement on the test split (split seed 0, the shipped model's) and on --names different
   name-like strings (the main benchmark's): the same top label, and the largest and mean gap
   between calibrated probabilities; test accuracy and macro-F1 in each precision.
2. `charclf predict --file` on those names, in each precision, with 1 thread and one per usable
   core: (N - 1) / (time for N names - time for one), each the best of --runs, the precisions
   taking turns.

    python scripts/benchmark_precision.py [--runs 3] [--names 100000] [--markdown docs/benchmarks.md]

--markdown puts the results into that file as its section between the markers below (replacing an
earlier one; appended if there is none).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import dataset_lines, distinct_names, thread_env  # noqa: E402 (the main benchmark's names)
from benchmark_onnx import write_section  # noqa: E402

PRECISIONS = ("float32", "bfloat16")
BEGIN, END = "<!-- benchmark_precision.py: begin -->", "<!-- benchmark_precision.py: end -->"
TITLE = "## Precision: float32 and bfloat16 (`--precision`)"


def agreement(classifiers: dict, names: list[str]) -> dict:
    """Top-label agreement and probability gaps of bfloat16 against float32 on `names` (folded)."""
    exact, fast = (classifiers[p].probabilities(names) for p in PRECISIONS)
    gap = (exact - fast).abs()
    return {"names": len(names), "same_top1": int((exact.argmax(1) == fast.argmax(1)).sum()),
            "max_gap": float(gap.max()), "mean_gap": float(gap.mean())}


def cli_rates(names: list[str], runs: int, threads: int, work: Path) -> dict[str, float]:
    """names/s of `charclf predict --file` in each precision (start-up cancelled out, best of `runs`)."""
    files = {"all": work / "all.txt", "one": work / "one.txt"}
    files["all"].write_text("\n".join(names) + "\n", encoding="utf-8")
    files["one"].write_text(names[0] + "\n", encoding="utf-8")
    best = {(p, key): float("inf") for p in PRECISIONS for key in files}
    for _ in range(runs):
        for precision in PRECISIONS:
            for key, path in files.items():
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "charclf", "predict", "--file", str(path), "--device", "cpu",
                                "--precision", precision], check=True, stdout=subprocess.DEVNULL,
                               env={**thread_env(threads), "CHARCLF_HOME": str(work)})  # the shipped model
                best[precision, key] = min(best[precision, key], time.perf_counter() - started)
    return {p: (len(names) - 1) / (best[p, "all"] - best[p, "one"]) for p in PRECISIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", "data/names")))
    parser.add_argument("--markdown", type=Path, help="Write the results as a section of this Markdown file.")
    args = parser.parse_args()

    import torch

    from charclf.predict.classifier import Classifier
    from charclf.files.locations import shipped_checkpoint
    from charclf.predict.precision import native_bfloat16
    from charclf.names.text import read_name
    from charclf.threads import usable_cores

    torch.set_num_threads(1)
    classifiers = {p: Classifier.load(shipped_checkpoint(), device="cpu", precision=p) for p in PRECISIONS}
    scores = {p: clf.evaluate(args.data) for p, clf in classifiers.items()}
    raw = distinct_names(dataset_lines(args.data), args.names)
    as_read = [read_name(name, classifiers["float32"].alphabet)[0] for name in raw]
    folded = [name for name in dict.fromkeys(as_read) if name]
    on_names = agreement(classifiers, folded)
    with tempfile.TemporaryDirectory() as work:
        rates = {threads: cli_rates(raw, args.runs, threads, Path(work)) for threads in sorted({1, usable_cores()})}

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with `python scripts/benchmark_precision.py "
        f"--runs {args.runs} --names {args.names}` on {os.cpu_count()} cores (load average {load} at the end; "
        f"bfloat16 instructions: {'yes' if native_bfloat16() else 'no, emulated'}), Python "
        f"{platform.python_version()}, torch {torch.__version__}, the shipped model.",
        "",
        "| | float32 (the default) | bfloat16 |",
        "|---|---:|---:|",
        f"| test accuracy / macro-F1 (split seed 0, {scores['float32']['n']:,} names) | "
        + " | ".join(f"{scores[p]['accuracy']:.4f} / {scores[p]['macro_f1']:.4f}" for p in PRECISIONS) + " |",
    ]
    for threads, rate in rates.items():
        lines.append(f"| `predict --file`, {args.names:,} names, {threads} thread(s) (names/s) | "
                     + " | ".join(f"{rate[p]:,.0f}" for p in PRECISIONS) + " |")
    lines += ["", f"bfloat16 against float32 on the {on_names['names']:,} different names as read: the same top "
              f"label for {on_names['same_top1'] / on_names['names']:.2%} of them; calibrated probabilities "
              f"{on_names['mean_gap']:.1e} apart on average, {on_names['max_gap']:.3f} at most. Speed-ups: "
              + ", ".join(f"{rate['bfloat16'] / rate['float32']:.2f}x with {threads} thread(s)"
                          for threads, rate in rates.items()) + "."]
    print("\n".join(lines))
    if args.markdown:
        write_section(args.markdown, lines, BEGIN, END, TITLE)


if __name__ == "__main__":
    main()
