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

from charclf.predict.rows import json_row

MAX_BATCH_NAMES = 2048  # names per model call, at most (a request larger than this goes alone)


class PredictBatcher:
    def __init__(self, clf, workers: int, max_names: int = MAX_BATCH_NAMES, observe=None):
        self.clf = clf
        self.observe = observe  # called with each model call's Predictions (the server's metrics)
        self.workers = workers
        self.max_names = max_names
        self.limiter = anyio.CapacityLimiter(workers)  # shared with other model work (explain)
        self.pending: deque = deque()  # (names, options, future)
        self.draining = 0  # drain tasks running: at most `workers`
        self.tasks: set[asyncio.Task] = set()  # held here: the loop keeps only weak references

    async def predict(self, names: list[str], **options) -> list[str]:
        """The JSON rows of `names` (rows.json_rows; options: Classifier.predict's, e.g. k,
        min_confidence), computed in one call with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((names, options, future))
        if self.draining < self.workers:
            self.draining += 1
            task = asyncio.create_task(self._drain())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
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
        finally:
            # Counted down here, with no await since `pending` was last seen empty: a request
            # queued from now on starts a new drain (a done-callback would run too late).
            self.draining -= 1

    def _take(self) -> list:
        """The oldest waiting requests, up to max_names names (always at least one request)."""
        batch = [self.pending.popleft()]
        names = len(batch[0][0])
        while self.pending and names + len(self.pending[0][0]) <= self.max_names:
            names += len(self.pending[0][0])
            batch.append(self.pending.popleft())
        return batch

    def _compute(self, batch: list) -> list[list[str]]:
        """In a worker thread: one predict call per distinct set of options in the batch
        (usually one), split back into each request's rows."""
        groups = defaultdict(list)  # options, as sorted (key, value) pairs -> positions in batch
        for position, (_, options, _) in enumerate(batch):
            groups[tuple(sorted(options.items()))].append(position)
        results: list = [None] * len(batch)
        for options, positions in groups.items():
            predictions = self.clf.predict([name for p in positions for name in batch[p][0]], **dict(options))
            if self.observe is not None:
                self.observe(predictions)
            rows = [json_row(p.name, p) for p in predictions]
            start = 0
            for p in positions:
                results[p] = rows[start : start + len(batch[p][0])]
                start += len(batch[p][0])
        return results
