"""A server process's life: listening, ready, draining after SIGTERM, stopped.

On SIGTERM (or Ctrl-C) the server keeps listening but drains: /readyz fails at once, new
requests get 503, requests in flight run on until they finish or `drain_seconds` pass, and then
each one still running gets a 503 (never a 500) before the process stops. A second signal ends
the wait at once. Connections must send their request headers within `header_seconds` and an idle
kept-alive connection is closed after `idle_seconds`, so idle sockets cannot pile up."""

from __future__ import annotations

import asyncio
import signal
import time

RESPITE_SECONDS = 2.0  # after the drain deadline, how long the cancelled requests get to send their 503


class Lifecycle:
    """Whether the app is ready or draining, and the request tasks in flight."""

    def __init__(self, drain_seconds: float):
        self.drain_seconds = drain_seconds
        self.ready = False  # the model is loaded and has answered once
        self.draining = False
        self.expired = False  # the drain deadline passed: requests still running were cancelled
        self.deadline = 0.0
        self.tasks: set[asyncio.Task] = set()
        self.watcher: asyncio.Task | None = None

    def begin_drain(self) -> None:
        if not self.draining:
            self.draining, self.deadline = True, time.monotonic() + self.drain_seconds

    def may_stop(self) -> bool:
        """Called every 0.1 s once draining: True when nothing is in flight, or nothing more can be
        waited for. At the deadline every request still running is cancelled (guard.Guard answers 503)."""
        if not self.tasks:
            return True
        now = time.monotonic()
        if now >= self.deadline and not self.expired:
            self.expired = True
            for task in list(self.tasks):
                task.cancel()
        return self.expired and now >= self.deadline + RESPITE_SECONDS


    async def stop_when_drained(self, stop) -> None:
        while not self.may_stop():
            await asyncio.sleep(0.05)
        stop()

    def take_over_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called while the app starts, inside uvicorn's own signal handling: the first SIGTERM or
        SIGINT starts the drain and hands over to uvicorn's handler (which stops the server) once
        it is done; a second one moves the deadline to now. In every worker process alike."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            stop = signal.getsignal(sig)
            if not callable(stop):  # not uvicorn's: leave it
                continue

            def handler(signum, frame, stop=stop):
                if self.draining:  # a second signal: the deadline is now (requests in flight get 503)
                    self.deadline = min(self.deadline, time.monotonic())
                    return
                self.begin_drain()
                loop.call_soon_threadsafe(self.watch, lambda: stop(signum, None))

            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (an app run by other means): no drain
                return

    def watch(self, stop) -> None:
        self.watcher = asyncio.get_running_loop().create_task(self.stop_when_drained(stop))
