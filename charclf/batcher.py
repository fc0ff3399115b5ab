"""Predict requests that arrive together share one model call.

While the model is busy with one batch, new requests wait in a queue; the next free worker takes
all of them at once (up to MAX_BATCH_NAMES names) into a single call in a worker thread. An idle
server adds no wait: a lone request starts at once. Under load, one call serves many requests,
which costs far less than one call each.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

import anyio

from charclf.rows import json_rows

MAX_BATCH_NAMES = 2048  # names per model call, at most (a request larger than this goes alone)


class PredictBatcher:
    def __init__(self, clf, workers: int, max_names: int = MAX_BATCH_NAMES):
        self.clf = clf
        self.workers = workers
        self.max_names = max_names
        self.limiter = anyio.CapacityLimiter(workers)  # shared with other model work (explain)
        self.pending: deque = deque()  # (names, k, min_confidence, future)
        self.draining: set[asyncio.Task] = set()  # drain tasks running: at most `workers`

    async def predict(self, names: list[str], k: int, min_confidence: float | None) -> list[str]:
        """The JSON rows (rows.json_rows) of `names`, computed in a batch with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((names, k, min_confidence, future))
        if len(self.draining) < self.workers:
            task = asyncio.create_task(self._drain())
            self.draining.add(task)  # held here: the loop keeps only a weak reference to a task
            task.add_done_callback(self.draining.discard)
        return await future

    async def _drain(self) -> None:
        while self.pending:
            batch = self._take()
            try:
                results = await anyio.to_thread.run_sync(self._compute, batch, limiter=self.limiter)
            except Exception as error:  # every request of the batch gets it (a 500 for each)
                results = [error] * len(batch)
            for (*_, future), result in zip(batch, results):
                if future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _take(self) -> list:
        """The oldest waiting requests, up to max_names names (always at least one request)."""
        batch = [self.pending.popleft()]
        names = len(batch[0][0])
        while self.pending and names + len(self.pending[0][0]) <= self.max_names:
            names += len(self.pending[0][0])
            batch.append(self.pending.popleft())
        return batch

    def _compute(self, batch: list) -> list[list[str]]:
        """In a worker thread: one json_rows call per distinct (k, min_confidence) in the batch
        (usually one), split back into each request's rows."""
        groups = defaultdict(list)  # (k, min_confidence) -> positions in batch
        for position, (_, k, min_confidence, _) in enumerate(batch):
            groups[k, min_confidence].append(position)
        results: list = [None] * len(batch)
        for (k, min_confidence), positions in groups.items():
            rows = json_rows(self.clf, [name for p in positions for name in batch[p][0]], k, min_confidence)
            start = 0
            for p in positions:
                results[p] = rows[start : start + len(batch[p][0])]
                start += len(batch[p][0])
        return results
