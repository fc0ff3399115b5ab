"""How many CPU threads torch may use: --threads, else $CHARCLF_THREADS, else chosen here.

torch's own default (one thread per core) falls off a cliff on a machine whose cores are busy
with other work: its threads spin while they wait for each other, and training and prediction
ran several times slower than with one thread (docs/threads.md). So, with nothing given:

- short work (a few names on the command line) uses one thread: there is nothing to share out;
- batch work (training, evaluating, a file of names) uses the cores that are free: the number of
  cores less the 1-minute load average, rounded, and at least one. On a quiet 2-core machine
  that is 2, which predicted a file of names about 1.7x as fast as one thread; on a busy one, 1.
"""

from __future__ import annotations

import os

ENV = "CHARCLF_THREADS"
# The most threads charclf asks for: torch and ONNX Runtime crash on a million (SIGSEGV) or overflow.
MAX_THREADS = 1024


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def free_cores() -> int:
    """Cores not busy with other work, by the 1-minute load average (at least 1)."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform: assume busy
        return 1
    return max(1, min(cores, round(cores - load)))


def thread_count(given: int | None, batch: bool = True) -> int:
    """The threads to use: `given`, else $CHARCLF_THREADS, else 1 for short work and the free cores
    for batch work. A bad variable is a ValueError."""
    if given is not None:
        return given
    value = os.environ.get(ENV, "").strip()
    if value:
        return checked(value, f"${ENV}")
    return free_cores() if batch else 1


def checked(threads, source: str = "threads") -> int:
    """`threads` (an int, or its digits as read from a variable) if it is a whole number of threads
    from 1 to MAX_THREADS; else a ValueError naming `source`."""
    count = int(threads) if isinstance(threads, str) and threads.isascii() and threads.isdigit() else threads
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_THREADS:
        raise ValueError(f"{source} must be a whole number of threads from 1 to {MAX_THREADS}; got {threads!r}")
    return count


def use_threads(given: int | None, batch: bool = True) -> int:
    """Set torch's intra-op thread count (see thread_count); returns it."""
    import torch

    count = thread_count(given, batch)
    torch.set_num_threads(count)
    return count
