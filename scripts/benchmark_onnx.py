#!/usr/bin/env python
"""The shipped model through torch and through ONNX Runtime (`charclf export`), in one run.

1. Agreement on the whole test split (split seed 0, charclf's own split code): top-1 labels and the
   largest gap between probabilities.
2. `charclf predict Jones` wall time in a fresh process: the .pt checkpoint (imports torch) and the
   exported .onnx file (does not); --runs each, taking turns with bare Python, `import torch` and
   `import onnxruntime` for scale; best and median.
3. Batch throughput of Classifier.predict / OnnxClassifier.predict (names folded, read, scored,
   top 3), both on one thread, on the test split's names repeated to --names names.

    python scripts/benchmark_onnx.py [--runs 9] [--names 50000] [--json docs/benchmarks-onnx.json]
                                     [--markdown docs/benchmarks.md]

--markdown puts the results into that file as its section between the markers below (replacing an
earlier one; appended if there is none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import dataset_lines, distinct_names  # noqa: E402 (the names the main benchmark times)


def predict_one_times(charclf: Path, onnx_file: Path, runs: int) -> dict[str, list[float]]:
    commands = {TORCH: [str(charclf), "predict", "Jones"],
                ONNX: [str(charclf), "predict", "--checkpoint", str(onnx_file), "Jones"],
                # What the machine gives any Python program, for scale.
                'python -c "pass"': [sys.executable, "-c", "pass"],
                'python -c "import torch"': [sys.executable, "-c", "import torch"],
                'python -c "import onnxruntime"': [sys.executable, "-c", "import onnxruntime"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CHARCLF_HOME": home}  # the shipped model, not one trained here
        for _ in range(runs):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - started)
    return times


def throughput(classifiers: dict, names: list[str], repeats: int = 3) -> dict[str, float]:
    """Names per second of each classifier's predict() over `names` (best of `repeats`, taking turns)."""
    best = {name: float("inf") for name in classifiers}
    for _ in range(repeats):
        for name, clf in classifiers.items():
            started = time.perf_counter()
            clf.predict(names, k=3)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: len(names) / seconds for name, seconds in best.items()}


TORCH = "`charclf predict Jones`: the shipped .pt on torch"
ONNX = "`charclf predict --checkpoint model.onnx Jones`: ONNX Runtime"
BEGIN, END = "<!-- benchmark_onnx.py: begin -->", "<!-- benchmark_onnx.py: end -->"
TITLE = "## Light inference: torch against ONNX Runtime (`charclf export`)"


def write_section(path: Path, lines: list[str], begin: str = BEGIN, end: str = END, title: str = TITLE) -> None:
    """Put `lines` into `path` between `begin` and `end`, in place of an earlier section, else at its end."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    section = "\n".join([begin, title, "", *lines, "", "Measured on a shared, busy machine (see the load "
                         "average): compare the rows with each other, as ratios, not with other runs.", end])
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--names", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", "data/names")))
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    parser.add_argument("--markdown", type=Path, help="Write the results as a section of this Markdown file.")
    args = parser.parse_args()

    import torch

    from charclf.predict.classifier import Classifier
    from charclf.data.dataset import load_dataset, split_dataset
    from charclf.files.locations import shipped_checkpoint
    from charclf.predict.onnx_runtime import OnnxClassifier

    torch.set_num_threads(1)
    charclf = Path(sys.executable).with_name("charclf")
    work = Path(tempfile.mkdtemp())
    onnx_file = work / "model.onnx"
    subprocess.run([str(charclf), "export", "--checkpoint", str(shipped_checkpoint()), str(onnx_file)], check=True,
                   stdout=subprocess.DEVNULL)
    torch_clf, onnx_clf = Classifier.load(shipped_checkpoint(), device="cpu"), OnnxClassifier.load(onnx_file, threads=1)

    test = [name for name, _ in split_dataset(load_dataset(args.data), seed=0)["test"]]
    expected, got = torch_clf.probabilities(test).numpy(), onnx_clf.probabilities(test)
    agreement = {"names": len(test), "same_top1": int((expected.argmax(1) == got.argmax(1)).sum()),
                 "max_probability_gap": float(abs(expected - got).max())}

    times = predict_one_times(charclf, onnx_file, args.runs)
    # Different names (as the main benchmark times): torch runs a repeated name once, ONNX Runtime does not.
    names = distinct_names(dataset_lines(args.data), args.names)
    rates = throughput({TORCH: torch_clf, ONNX: onnx_clf}, names)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with `python scripts/benchmark_onnx.py "
        f"--runs {args.runs} --names {args.names}` on {os.cpu_count()} cores (load average {load} at the end), "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {__import__('onnxruntime').__version__}.",
        "",
        f"Agreement on the test split (split seed 0): the same top label for {agreement['same_top1']} of "
        f"{agreement['names']} names; largest probability gap {agreement['max_probability_gap']:.1e}.",
        "",
        "| command | wall time in a fresh process, best (s) | median (s) | batch predict, 1 thread (names/s) |",
        "|---|---|---|---|",
    ]
    for name in times:
        rate = f"{rates[name]:,.0f}" if name in rates else "-"
        shown = name if name in rates else f"`{name}`"
        lines.append(f"| {shown} | {min(times[name]):.3f} | {statistics.median(times[name]):.3f} | {rate} |")
    torch_name, onnx_name = TORCH, ONNX
    lines.append("")
    lines.append(f"Ratios, onnxruntime / torch: predict-one median time "
                 f"{statistics.median(times[onnx_name]) / statistics.median(times[torch_name]):.2f}, "
                 f"batch throughput {rates[onnx_name] / rates[torch_name]:.2f}.")
    print("\n".join(lines))
    if args.markdown:
        write_section(args.markdown, lines)
    if args.json:
        args.json.write_text(json.dumps({"agreement": agreement, "predict_one_seconds": times,
                                         "batch_names_per_second": rates, "load_average": os.getloadavg()},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
