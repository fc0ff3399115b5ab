"""The shipped model predicting in float32 and in bfloat16 (`--precision`), in one run.

1. Agreement on the test split (the shipped model's) and on --names different name-like strings
   (the accuracy mode's kind): the same top label, and the largest and mean gap between calibrated
   probabilities; test accuracy and macro-F1 in each precision.
2. `charclf predict --file` on those names, in each precision, with 1 thread and one per usable
   core: (N - 1) / (time for N names - time for one), each the best of --runs, the precisions
   taking turns.

    python scripts/benchmark.py precision [--runs 3] [--names 100000] [--markdown docs/benchmarks.md]

--markdown puts the results into that file as its section between the markers
<!-- benchmark_precision.py: begin --> and <!-- benchmark_precision.py: end --> (replacing an
earlier one; appended if there is none).
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

from benchmarks.common import (
    BUSY_NOTE,
    data_dir,
    dataset_lines,
    distinct_names,
    load_average,
    md_table,
    predict_file_rates,
    rate_text,
    replace_between,
    shown_command,
    utc_now,
)

PRECISIONS = ("float32", "bfloat16")  # charclf's default, and the one measured against it
# The markers of its section in docs/benchmarks.md (named after the script this mode once was).
BEGIN, END = "<!-- benchmark_precision.py: begin -->", "<!-- benchmark_precision.py: end -->"
TITLE = "## Precision: float32 and bfloat16 (`--precision`)"


def agreement(classifiers: dict, names: list[str]) -> dict:
    """Top-label agreement and probability gaps of bfloat16 against float32 on `names` (folded)."""
    exact, fast = (classifiers[p].probabilities(names) for p in PRECISIONS)
    gap = (exact - fast).abs()
    return {"names": len(names), "same_top1": int((exact.argmax(1) == fast.argmax(1)).sum()),
            "max_gap": float(gap.max()), "mean_gap": float(gap.mean())}


def report(args, scores: dict, on_names: dict, rates: dict) -> list[str]:
    import torch

    from charclf.predict.precision import native_bfloat16

    rows = [[f"test accuracy / macro-F1 (split seed {scores['seed']}, {scores['float32']['n']:,} names)",
             *(f"{scores[p]['accuracy']:.4f} / {scores[p]['macro_f1']:.4f}" for p in PRECISIONS)]]
    rows += [[f"`predict --file`, {args.names:,} names, {threads} thread(s) (names/s)",
              *(rate_text(rate[p]) for p in PRECISIONS)] for threads, rate in rates.items()]
    speedups = ", ".join(f"{rate['bfloat16'] / rate['float32']:.2f}x with {threads} thread(s)"
                         for threads, rate in rates.items() if None not in rate.values())
    return [
        f"Run {utc_now()} with `{shown_command('precision', args, 'runs', 'names')}` on {os.cpu_count()} cores "
        f"(load average {load_average()} at the end; bfloat16 instructions: "
        f"{'yes' if native_bfloat16() else 'no, emulated'}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, the shipped model.",
        "",
        *md_table(["", "float32 (the default)", "bfloat16"], rows),
        "",
        f"bfloat16 against float32 on the {on_names['names']:,} different names as read: the same top label for "
        f"{on_names['same_top1'] / on_names['names']:.2%} of them; calibrated probabilities {on_names['mean_gap']:.1e} "
        f"apart on average, {on_names['max_gap']:.3f} at most. Speed-ups: {speedups or 'not timed (too few names)'}.",
    ]


def run(args) -> None:
    import torch

    from charclf.config import TrainConfig
    from charclf.files.locations import shipped_checkpoint
    from charclf.names.reader import read
    from charclf.predict.loading import load as load_model
    from charclf.threads import usable_cores

    data = data_dir(args.data)
    torch.set_num_threads(1)
    classifiers = {p: load_model(shipped_checkpoint(), device="cpu", precision=p) for p in PRECISIONS}
    scores = {p: clf.evaluate(data) for p, clf in classifiers.items()}  # on the model's own split
    scores["seed"] = classifiers["float32"].checkpoint.train_config.get("seed", TrainConfig.seed)
    raw = distinct_names(dataset_lines(data), args.names)
    as_read = [read(name, classifiers["float32"].alphabet).as_read for name in raw]
    on_names = agreement(classifiers, [name for name in dict.fromkeys(as_read) if name])
    with tempfile.TemporaryDirectory() as work:  # the shipped model: charclf's home pointed at an empty folder
        rates = {threads: predict_file_rates(raw, Path(work), threads, PRECISIONS, args.runs)
                 for threads in sorted({1, usable_cores()})}
    lines = report(args, scores, on_names, rates)
    print("\n".join(lines))
    if args.markdown:
        replace_between(args.markdown, BEGIN, END, "\n".join([TITLE, "", *lines, "", BUSY_NOTE]))
