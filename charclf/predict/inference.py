"""A torch network as the runner's run(letters, lengths) -> logits (charclf.predict.runner): on the
CPU or a GPU, in float32 or bfloat16 products (charclf.predict.precision); on a CPU with torch set
to N > 1 threads, N workers each on one torch thread."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from charclf.predict.precision import autocast
from charclf.predict.runner import Run, run_names

# Held while one_thread_each has set torch to one thread per worker, so that two callers at once
# cannot leave that setting behind (one restores the count the other had lowered).
_THREADS_LOCK = threading.Lock()


def network_batch(device: torch.device) -> int:
    """Names per forward pass at prediction time. On the CPU, small batches keep a recurrent step's
    (B, gates * H) tensors in each core's cache: 256 names predicted about 1.5x as fast on one
    thread as batches of 4,096 (docs/benchmarks.md, `python scripts/benchmark.py batch`). A GPU wants
    large batches."""
    return 4096 if device.type != "cpu" else 256


def torch_run(model: nn.Module, device: torch.device, precision: str = "float32") -> Run:
    """`model` as run(letters, lengths) -> logits: numpy in and out, the network on `device`."""
    model.eval()

    def run(letters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), autocast(precision, device):  # per thread: a worker inherits neither
            return model(torch.from_numpy(letters).to(device), torch.from_numpy(lengths)).float().cpu().numpy()

    return run


@contextmanager
def one_thread_each():
    """torch set to one thread while several workers run (the count is restored after, whatever
    happens): each worker's batches then run on one core."""
    with _THREADS_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def batched_logits(
    model: nn.Module, names: list[str], alphabet: str, device: torch.device, batch_size: int | None = None,
    precision: str = "float32",
) -> torch.Tensor:
    """N folded, non-empty names -> (N, n_classes) logits on the CPU, in input order, by the runner
    (charclf.predict.runner) in batches of `batch_size` (default: network_batch), on as many
    workers as torch has CPU threads (one on a GPU)."""
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    logits = run_names(names, torch_run(model, device, precision), model.letters(alphabet),
                       model.config.n_classes, batch_size or network_batch(device), workers, one_thread_each)
    return torch.from_numpy(logits)
