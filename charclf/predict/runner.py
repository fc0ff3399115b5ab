"""The one inference runner: folded names -> (N, n_classes) logits, for every backend.

A backend gives one function, run(letters, lengths) -> logits: (B, L) int64 alphabet positions of
B names that all have L letters and their (B,) int64 lengths in, (B, n_classes) float32 logits out
(numpy arrays both ways). The runner does the rest, once for torch and ONNX Runtime alike:

- a name given several times runs once (lists of surnames repeat: Smith, Smith, ...);
- names are grouped by exact length, each group in batches of at most `batch` names, shortest
  first: no padding, so a name's numbers do not depend on the names beside it;
- no batch holds more than `batch` * LETTERS_PER_ROW letters (names of 1,000 letters run 16 at a
  time where names of 7 run 256): a batch's memory (every step's hidden state, kept for the
  pooling) grows with its letters, so long names never ask a backend for more than short ones do;
- a lone name runs as two copies: one-row products add up in another order than many-row ones
  (in bfloat16 that showed in the third decimal; ONNX Runtime rounds them otherwise too);
- the batches run on `workers` threads (a recurrent step is too small to split between threads:
  on 2 cores, 2 workers predicted about 1.5x as fast as batches split between 2 threads,
  docs/prediction.md, "Threads"), while the calling thread turns the next batches' names into
  letter positions. With one worker all of it runs in the calling thread: indexing is a few
  percent of the network's time, and a second thread indexing ahead of one worker was no faster.

numpy only: the light install (numpy and onnxruntime) runs it without torch."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Callable, ContextManager, Iterator

import numpy as np

from charclf.data.letters import Letters

Run = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (B, L) letters, (B,) lengths -> (B, C) logits
AHEAD = 4  # batches indexed and waiting, per worker
# The letters a batch may hold, per name it may hold: far above a surname's (under 20), so that
# batches of real names are full ones; 256 names of 1,000 letters took 2 GiB in ONNX Runtime.
LETTERS_PER_ROW = 64


def length_batches(lengths: np.ndarray, batch: int) -> list[np.ndarray]:
    """(N,) name lengths -> row indices in batches of at most `batch` rows and `batch` *
    LETTERS_PER_ROW letters, each of names of one length: every row once, shortest names first,
    rows of one length in input order."""
    if not len(lengths):
        return []
    order = np.argsort(lengths, kind="stable")
    # Where each length's run of `order` starts, and the end.
    bounds = np.flatnonzero(np.diff(lengths[order])) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])
    out = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        rows = max(1, min(batch, batch * LETTERS_PER_ROW // max(1, int(lengths[order[start]]))))
        out += [order[i : min(i + rows, end)] for i in range(start, end, rows)]
    return out


def run_names(names: list[str], run: Run, letters: Letters, n_classes: int, batch: int, workers: int = 1,
              exclusive: Callable[[], ContextManager] = nullcontext) -> np.ndarray:
    """Folded, non-empty names -> (N, n_classes) float32 logits, in input order (see the module's
    text). `exclusive`: a context held while several workers run (torch: one thread each)."""
    distinct = list(dict.fromkeys(names))
    if len(distinct) < len(names):
        row = {name: i for i, name in enumerate(distinct)}
        logits = run_names(distinct, run, letters, n_classes, batch, workers, exclusive)
        return logits[np.fromiter((row[n] for n in names), dtype=np.int64, count=len(names))]
    out = np.empty((len(names), n_classes), dtype=np.float32)
    batches = length_batches(np.fromiter(map(len, names), dtype=np.int64, count=len(names)), batch)

    def inputs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in batches:
            yield letters.same_length([names[i] for i in (rows if len(rows) > 1 else [rows[0]] * 2)])

    workers = max(1, min(workers, len(batches)))
    if workers == 1:
        for rows, given in zip(batches, inputs()):
            out[rows] = run(*given)[: len(rows)]
        return out
    with exclusive(), ThreadPoolExecutor(workers) as pool:
        # This thread indexes batches while the workers run the ones before, at most AHEAD per
        # worker in flight (so that a long list's letters are never all held at once).
        pending: deque = deque()
        for rows, given in zip(batches, inputs()):
            pending.append((rows, pool.submit(run, *given)))
            if len(pending) > AHEAD * workers:
                done, future = pending.popleft()
                out[done] = future.result()[: len(done)]
        for done, future in pending:
            out[done] = future.result()[: len(done)]
    return out
