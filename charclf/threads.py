"""How many CPU threads torch may use: --threads, else $CHARCLF_THREADS, else one.

Why one by default: these models are small (a batch of names is a few hundred thousand
multiply-adds per letter), so a second thread saves little, and on a machine whose cores are
busy with other work torch's default (one thread per core, spinning while it waits for the
others) made training and prediction many times slower (docs/benchmarks.md, "Threads")."""

from __future__ import annotations

import os

ENV = "CHARCLF_THREADS"


def thread_count(given: int | None) -> int:
    """The threads to use: `given`, else $CHARCLF_THREADS, else 1. A bad variable is a ValueError."""
    if given is not None:
        return given
    value = os.environ.get(ENV, "").strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${ENV} must be a whole number of threads, at least 1; got {value!r}")
    return int(value)


def use_threads(given: int | None) -> int:
    """Set torch's intra-op thread count (see thread_count); returns it."""
    import torch

    count = thread_count(given)
    torch.set_num_threads(count)
    return count
