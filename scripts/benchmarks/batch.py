"""How many names one forward pass should take on the CPU (the network batch at prediction time).

The shipped model's logits for the same --names different name-like strings (the accuracy mode's
kind), in network batches of 128 to 4,096 names, with 1 and 2 torch threads. Every setting runs
--rounds times, the settings taking turns so that a busy moment of the machine hits them all alike;
the table shows the median and the best names/s. charclf's choice (charclf.predict.inference.network_batch) is marked.

    python scripts/benchmark.py batch [--rounds 5] [--names 50000]
"""

from __future__ import annotations

import os
import statistics

from benchmarks.common import data_dir, dataset_lines, distinct_names, md_table, taking_turns

BATCHES = (128, 256, 512, 1024, 4096)  # charclf's own choice is added if it is not among them
THREADS = (1, 2)


def run(args) -> None:
    import torch

    from charclf.files.locations import shipped_checkpoint
    from charclf.names.text import fold
    from charclf.predict.inference import batched_logits, network_batch
    from charclf.predict.loading import load as load_model

    clf = load_model(shipped_checkpoint(), device="cpu", backend="torch")
    names = [name for name in map(fold, distinct_names(dataset_lines(data_dir(args.data)), args.names)) if name]
    chosen = network_batch(torch.device("cpu"))

    def forward(threads: int, batch: int) -> None:
        torch.set_num_threads(threads)
        batched_logits(clf.backend.model, names, clf.alphabet, clf.device, batch)

    settings = [(threads, batch) for threads in THREADS for batch in sorted({*BATCHES, chosen})]
    times = taking_turns({setting: lambda setting=setting: forward(*setting) for setting in settings}, args.rounds)
    print(f"{len(names):,} names, {args.rounds} rounds, {os.cpu_count()} cores, torch {torch.__version__}\n")
    rows = []
    for (threads, batch), seconds in times.items():
        speeds = [len(names) / s for s in seconds]
        mark = " (charclf's choice)" if batch == chosen else ""
        rows.append([threads, f"{batch:,}{mark}", f"{statistics.median(speeds):,.0f}", f"{max(speeds):,.0f}"])
    print("\n".join(md_table(["threads", "names per forward pass", "median names/s", "best names/s"], rows,
                             align="rrrr")))
