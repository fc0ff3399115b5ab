"""Each backbone trained and predicting on a GPU, in float32 and under bfloat16 autocast, in one run.

For gru, lstm and rnn (each with its own defaults, split seed 0, no refit: the refit's second
process would time the same epochs twice), and for each precision:
1. training seconds on --device (the whole `charclf.train` call, data reading included) and the
   test accuracy and macro-F1 of the model kept;
2. batch names/s: `Classifier.predict` on --names different name-like strings at once on
   --device with the torch backend, the best of --runs after one warm-up.
bfloat16 trains under `torch.autocast` (the weights and optimizer stay float32) and predicts with
`--precision bfloat16`. Its row is kept as a recommendation only when its test accuracy is within
0.5 points of float32's.

    python scripts/benchmark.py gpu [--device cuda] [--epochs N] [--names 200000] [--markdown FILE]

scripts/gpu_check.sh runs it on a CUDA machine. `--device cpu --quick` runs the same steps on the
CPU in seconds (a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from pathlib import Path

from benchmarks.common import data_dir, dataset_lines, distinct_names, md_table, replace_between, utc_now

ARCHS = ("gru", "lstm", "rnn")
PRECISIONS = ("float32", "bfloat16")
KEEP_WITHIN = 0.005  # bfloat16 is recommended only when its test accuracy is within 0.5 points
BEGIN, END = "<!-- benchmark gpu: begin -->", "<!-- benchmark gpu: end -->"


def autocast(device, precision: str):
    """bfloat16 autocast on `device` (float32: no context)."""
    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def train_one(data: Path, out: Path, arch: str, precision: str, device, epochs: int | None) -> dict:
    """Train `arch` with its defaults (no refit) under `precision`; its seconds and test scores."""
    import charclf
    from charclf.config import defaults_for

    options, config = defaults_for(arch, epochs=epochs)
    config = dataclasses.replace(config, refit=False)
    start = time.perf_counter()
    with autocast(device, precision):
        result = charclf.train(data, out, arch=arch, model_options=options, config=config, device=str(device),
                               progress=False, log=lambda _line: None)
    seconds = time.perf_counter() - start
    test = result.metrics["test"]
    return {"train_s": seconds, "accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
            "epochs": config.epochs}


def names_per_second(model: Path, precision: str, device, names: list[str], runs: int) -> float:
    """Batch predict rate on `device`: one warm-up, then the best of `runs`."""
    import torch

    import charclf

    clf = charclf.load(model, backend="torch", device=str(device),
                       precision=None if precision == "float32" else precision)
    clf.predict(names[:1000], k=1)
    best = float("inf")
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        clf.predict(names, k=1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(names) / best


def device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def report(rows: list[dict], device, args, len_names: int, runs: int) -> list[str]:
    import torch

    base = {row["arch"]: row for row in rows if row["precision"] == "float32"}
    table = []
    for row in rows:
        gap = row["accuracy"] - base[row["arch"]]["accuracy"] if row["arch"] in base else 0.0
        keep = "yes" if row["precision"] == "float32" or abs(gap) <= KEEP_WITHIN else "no (accuracy gap)"
        table.append([row["arch"], row["precision"], f"{row['train_s']:.1f}", row["epochs"],
                      f"{row['accuracy']:.4f} / {row['macro_f1']:.4f}", f"{row['names_per_s']:,.0f}", keep])
    header = ["backbone", "precision", "training (s)", "epochs", "test accuracy / macro-F1",
              "batch predict (names/s)", "within 0.5 points"]
    return [f"Measured on **{device_name(device)}** with torch {torch.__version__}, {utc_now()}, by "
            f"`python scripts/benchmark.py gpu --device {args.device}"
            + (" --quick` (a smoke test, not a measurement)" if args.quick else
               (f" --epochs {args.epochs}" if args.epochs else "") + f" --names {args.names}`")
            + f". Split seed 0, no refit; predict: {len_names:,} different names in one call, best of {runs}.", "",
            *md_table(header, table, "llrrrrl")]


def run(args) -> int:
    from charclf.models.model import pick_device

    device = pick_device(args.device)
    data = data_dir(args.data)
    epochs = 1 if args.quick else args.epochs
    names = distinct_names(dataset_lines(data), 2_000 if args.quick else args.names)
    runs = 1 if args.quick else args.runs
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for arch in ARCHS:
            for precision in PRECISIONS:
                model = Path(work) / f"{arch}-{precision}.pt"
                row = {"arch": arch, "precision": precision,
                       **train_one(data, model, arch, precision, device, epochs)}
                row["names_per_s"] = names_per_second(model, precision, device, names, runs)
                rows.append(row)
                print(f"{arch} {precision}: {row['train_s']:.1f} s, test {row['accuracy']:.4f}, "
                      f"{row['names_per_s']:,.0f} names/s", flush=True)
    lines = report(rows, device, args, len(names), runs)
    print("\n".join(lines))
    if args.markdown:
        replace_between(args.markdown, BEGIN, END, "\n".join(lines))
    return 0
