"""The server's log: one access line per request (JSON or text; status 499: the client went
away before its request was read), and the event loop's own complaints (a full accept queue,
"Too many open files") at most once a second per kind, with a count of those held back."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time

from charclf.printable import printable

LOGGER = "charclf.server"
QUOTE = "\""  # what the text line quotes the request in


def server_logger() -> logging.Logger:
    """charclf.server's logger, writing plain lines to stderr (set up once per process)."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class AccessLog:
    """Writes one line per answered request: `json` (one object a line) or `text`."""

    def __init__(self, log_format: str, enabled: bool = True):
        self.json = log_format == "json"
        self.enabled = enabled
        self.logger = server_logger()

    def request(self, method: str, path: str, status: int, seconds: float, request_id: str, client) -> None:
        if not self.enabled and status != 499:  # a client gone away is logged even then: one line
            return
        host = client[0] if client else "-"
        if self.json:  # json.dumps of the same dict, written out: a line per request must be cheap
            self.logger.info(f'{{"time": "{_now()}", "request_id": "{request_id}", "client": {_json_str(host)}, '
                             f'"method": {_json_str(method)}, "path": {_json_str(path)}, "status": {status}, '
                             f'"ms": {round(seconds * 1000, 2)}}}')
        else:  # the client's words escaped: a newline or a quote in the path forges nothing
            self.logger.info(f'{_now()} {printable(host)} "{printable(method, quoted=QUOTE)} '
                             f'{printable(path, quoted=QUOTE)}" {status} {seconds * 1000:.1f} ms id={request_id}')


_json_str = json.JSONEncoder().encode  # a str's JSON literal


def _now() -> str:
    now = time.time()
    return _second(int(now)) + f".{int(now % 1 * 1000):03d}Z"


@functools.lru_cache(maxsize=2)
def _second(now: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))


class RateLimitedLoopErrors:
    """An event loop exception handler passing each kind of message on at most once per `period`
    seconds; the next one says how many were held back."""

    def __init__(self, period: float = 1.0):
        self.period = period
        self.last: dict[str, float] = {}  # message -> when it was last written
        self.held: dict[str, int] = {}

    def __call__(self, loop, context: dict) -> None:
        message = str(context.get("message", "event loop error"))
        now = time.monotonic()
        if now - self.last.get(message, -self.period) < self.period:
            self.held[message] = self.held.get(message, 0) + 1
            return
        self.last[message] = now
        held = self.held.pop(message, 0)
        error = context.get("exception")
        line = f"{message}: {type(error).__name__}: {error}" if error else message
        server_logger().error(printable(line) + (f" ({held} more like this held back)" if held else ""))
