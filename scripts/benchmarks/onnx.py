"""The shipped model through torch and through ONNX Runtime (`charclf export`), in one run.

1. Agreement on the whole test split (the shipped model's split seed, charclf's own split code):
   top-1 labels and the largest gap between probabilities.
2. `charclf predict Jones` wall time in a fresh process: the .pt checkpoint (imports torch) and the
   exported .onnx file (does not); --runs each, taking turns with bare Python, `import torch` and
   `import onnxruntime` for scale; best and median.
3. Batch throughput of Classifier.predict / OnnxClassifier.predict (names folded, read, scored,
   top 3), both on one thread, on --names different names (the accuracy mode's kind).

    python scripts/benchmark.py onnx [--runs 9] [--names 50000] [--json docs/benchmarks-onnx.json]
                                     [--markdown docs/benchmarks.md]

--markdown puts the results into that file as its section between the markers
<!-- benchmark_onnx.py: begin --> and <!-- benchmark_onnx.py: end --> (replacing an earlier one;
appended if there is none).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (BUSY_NOTE, charclf_script, data_dir, dataset_lines, distinct_names,
                               in_fresh_processes, load_average, md_table, replace_between, run_quietly,
                               shown_command, taking_turns, thread_env, utc_now)

TORCH = "`charclf predict Jones`: the shipped .pt on torch"
ONNX = "`charclf predict --checkpoint model.onnx Jones`: ONNX Runtime"
# The markers of its section in docs/benchmarks.md (named after the script this mode once was).
BEGIN, END = "<!-- benchmark_onnx.py: begin -->", "<!-- benchmark_onnx.py: end -->"
TITLE = "## Light inference: torch against ONNX Runtime (`charclf export`)"


def predict_one_times(charclf: str, onnx_file: Path, runs: int) -> dict[str, list[float]]:
    commands = {TORCH: [charclf, "predict", "Jones"],
                ONNX: [charclf, "predict", "--checkpoint", str(onnx_file), "Jones"],
                # What the machine gives any Python program, for scale.
                'python -c "pass"': [sys.executable, "-c", "pass"],
                'python -c "import torch"': [sys.executable, "-c", "import torch"],
                'python -c "import onnxruntime"': [sys.executable, "-c", "import onnxruntime"]}
    with tempfile.TemporaryDirectory() as home:  # the shipped model, not one `charclf train` wrote
        return in_fresh_processes(commands, runs, thread_env(home=Path(home)))


def throughput(classifiers: dict, names: list[str], rounds: int = 3) -> dict[str, float]:
    """Names per second of each classifier's predict(names, k=3), the best of `rounds`, taking turns."""
    jobs = {name: (lambda clf=clf: clf.predict(names, k=3)) for name, clf in classifiers.items()}
    return {name: len(names) / min(seconds) for name, seconds in taking_turns(jobs, rounds).items()}


def report(args, agreement: dict, times: dict, rates: dict, seed: int) -> list[str]:
    import onnxruntime
    import torch

    rows = [[name if name in rates else f"`{name}`", f"{min(t):.3f}", f"{statistics.median(t):.3f}",
             f"{rates[name]:,.0f}" if name in rates else "-"] for name, t in times.items()]
    ratio = statistics.median(times[ONNX]) / statistics.median(times[TORCH])
    return [
        f"Run {utc_now()} with `{shown_command('onnx', args, 'runs', 'names')}` "
        f"on {os.cpu_count()} cores (load average {load_average()} at the end), Python {platform.python_version()}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}.",
        "",
        f"Agreement on the test split (split seed {seed}): the same top label for {agreement['same_top1']} of "
        f"{agreement['names']} names; largest probability gap {agreement['max_probability_gap']:.1e}.",
        "",
        *md_table(["command", "wall time in a fresh process, best (s)", "median (s)",
                   "batch predict, 1 thread (names/s)"], rows, align="llll"),
        "",
        f"Ratios, onnxruntime / torch: predict-one median time {ratio:.2f}, "
        f"batch throughput {rates[ONNX] / rates[TORCH]:.2f}.",
    ]


def run(args) -> None:
    import torch
    from charclf.config import TrainConfig
    from charclf.data.dataset import load_dataset, split_dataset
    from charclf.files.locations import shipped_checkpoint
    from charclf.predict.classifier import Classifier
    from charclf.predict.onnx_runtime import OnnxClassifier

    data = data_dir(args.data)
    torch.set_num_threads(1)
    charclf = charclf_script()
    with tempfile.TemporaryDirectory() as work:
        onnx_file = Path(work) / "model.onnx"
        run_quietly([charclf, "export", "--checkpoint", str(shipped_checkpoint()), str(onnx_file)])
        torch_clf = Classifier.load(shipped_checkpoint(), device="cpu")
        onnx_clf = OnnxClassifier.load(onnx_file, threads=1)

        seed = torch_clf.checkpoint.train_config.get("seed", TrainConfig.seed)  # the split it was scored on
        test = [name for name, _ in split_dataset(load_dataset(data), seed=seed)["test"]]
        expected, got = torch_clf.probabilities(test).numpy(), onnx_clf.probabilities(test)
        agreement = {"names": len(test), "same_top1": int((expected.argmax(1) == got.argmax(1)).sum()),
                     "max_probability_gap": float(abs(expected - got).max())}
        times = predict_one_times(charclf, onnx_file, args.runs)
        # Different names: torch runs a repeated name once, ONNX Runtime does not.
        rates = throughput({TORCH: torch_clf, ONNX: onnx_clf}, distinct_names(dataset_lines(data), args.names))

    lines = report(args, agreement, times, rates, seed)
    print("\n".join(lines))
    if args.markdown:
        replace_between(args.markdown, BEGIN, END, "\n".join([TITLE, "", *lines, "", BUSY_NOTE]))
    if args.json:
        args.json.write_text(json.dumps({"agreement": agreement, "predict_one_seconds": times,
                                         "batch_names_per_second": rates, "load_average": os.getloadavg()},
                                        indent=2) + "\n")
