#!/usr/bin/env python
"""How many names one forward pass should take on the CPU: the shipped model's logits for the
same 50,000 different name-like strings, in network batches of 128 to 4,096 names, with 1 and
2 torch threads. Every setting runs --rounds times, the settings interleaved so that a busy
moment of the machine hits them all alike; the table shows the median and the best names/s.
charclf's choice (charclf.predict.inference.network_batch) is marked.

    python scripts/benchmark_batch.py [--rounds 5] [--names 50000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark import dataset_lines, distinct_names  # noqa: E402 (the names the main benchmark times)

BATCHES = (128, 256, 512, 1024, 4096)
THREADS = (1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--names", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", ROOT / "data" / "names")))
    args = parser.parse_args()

    import torch

    from charclf.predict.classifier import Classifier
    from charclf.files.locations import shipped_checkpoint
    from charclf.predict.inference import batched_logits, network_batch
    from charclf.names.text import fold

    clf = Classifier.load(shipped_checkpoint(), device="cpu")
    lines = dataset_lines(args.data)
    if not lines:
        raise SystemExit(f"Error: no names under {args.data}: give --data DIR or set CHARCLF_DATA")
    names = [name for name in map(fold, distinct_names(lines, args.names)) if name]
    speeds: dict[tuple[int, int], list[float]] = {}
    for _ in range(args.rounds):
        for threads in THREADS:
            torch.set_num_threads(threads)
            for batch in BATCHES:
                started = time.perf_counter()
                batched_logits(clf.model, names, clf.alphabet, clf.device, batch)
                speeds.setdefault((threads, batch), []).append(len(names) / (time.perf_counter() - started))
    print(f"{len(names):,} names, {args.rounds} rounds, {os.cpu_count()} cores, torch {torch.__version__}\n")
    print("| threads | names per forward pass | median names/s | best names/s |\n|---:|---:|---:|---:|")
    for (threads, batch), values in sorted(speeds.items()):
        torch.set_num_threads(threads)
        mark = " (charclf's choice)" if batch == network_batch(torch.device("cpu")) else ""
        print(f"| {threads} | {batch:,}{mark} | {statistics.median(values):,.0f} | {max(values):,.0f} |")


if __name__ == "__main__":
    main()
