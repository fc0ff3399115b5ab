"""Prediction in batches: names grouped by length, each group in small batches, and on a CPU with
several torch threads the batches shared out among that many workers, each on one thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

from charclf.predict.precision import autocast

# Held while batched_logits has set torch to one thread per worker, so that two callers at once
# cannot leave that setting behind (one restores the count the other had lowered).
_THREADS_LOCK = threading.Lock()


def network_batch(device: torch.device) -> int:
    """Names per forward pass at prediction time. On the CPU, small batches keep a recurrent step's
    (B, gates * H) tensors in each core's cache: 256 names predicted about 1.5x as fast on one
    thread as batches of 4,096 (docs/benchmarks.md, `python scripts/benchmark.py batch`). A GPU wants
    large batches."""
    return 4096 if device.type != "cpu" else 256


@torch.inference_mode()
def batched_logits(
    model: nn.Module, names: list[str], alphabet: str, device: torch.device, batch_size: int | None = None,
    precision: str = "float32",
) -> torch.Tensor:
    """N folded, non-empty names -> (N, n_classes) logits on the CPU, in input order.

    A name given several times runs once (lists of surnames repeat: Smith, Smith, ...). Names are
    grouped by exact length and each group runs through the model's same_length in batches of
    `batch_size` (default: network_batch): no packing and no padding (the same logits as the
    packed forward). On a CPU with torch set to N > 1 threads, N workers run the batches, each on
    one thread: a recurrent step is too small to split between threads well (on 2 cores, 2 workers
    predicted about 1.5x as fast as batches split between 2 threads: docs/prediction.md, "Threads").
    `precision`: "float32", or "bfloat16" products (charclf.predict.precision)."""
    model.eval()
    batch_size = batch_size or network_batch(device)
    distinct = list(dict.fromkeys(names))
    if len(distinct) < len(names):
        row = {name: i for i, name in enumerate(distinct)}
        logits = batched_logits(model, distinct, alphabet, device, batch_size, precision)
        return logits[torch.tensor([row[n] for n in names])]
    out = torch.empty(len(names), model.config.n_classes)
    if not names:
        return out
    padded, lengths = model.index(names, alphabet)  # (N, T), (N,)
    batches = length_batches(lengths, batch_size)  # [(rows of `names`, their length)]

    def run(batch: tuple[torch.Tensor, int]) -> torch.Tensor:
        rows, length = batch
        # A lone name runs as two copies: the products of a one-row batch add up in another order,
        # and in bfloat16 that showed in the third decimal. From two rows on, a name's bfloat16
        # numbers do not depend on its batch (a test holds them to that); float32's move by a few
        # millionths at most.
        letters = padded[rows, :length].expand(max(2, len(rows)), -1)
        with torch.inference_mode(), autocast(precision, device):  # per thread: a worker inherits neither
            return model.same_length(letters.to(device))[:len(rows)].float().cpu()

    workers = min(torch.get_num_threads(), len(batches)) if device.type == "cpu" else 1
    with _mapper(workers) as mapped:
        for (rows, _), logits in zip(batches, mapped(run, batches)):
            out[rows] = logits
    return out


@contextmanager
def _mapper(workers: int):
    """-> a map() over `workers` threads, torch set to one thread each while it is in use (the
    thread count is restored after, whatever happens); the builtin map for one worker."""
    if workers == 1:
        yield map
        return
    with _THREADS_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                yield pool.map
        finally:
            torch.set_num_threads(threads)


def length_batches(lengths: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, int]]:
    """(N,) name lengths -> batches of at most batch_size row indices whose names all have one
    length, with that length: every row once, shortest names first."""
    lengths, order = lengths.sort(stable=True)
    # Where each length's run starts and ends in `order`.
    values, counts = torch.unique_consecutive(lengths, return_counts=True)
    batches = []
    for length, end, count in zip(values.tolist(), counts.cumsum(0).tolist(), counts.tolist()):
        group = order[end - count : end]
        batches += [(group[start : start + batch_size], length) for start in range(0, count, batch_size)]
    return batches
