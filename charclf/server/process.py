"""Running the app under uvicorn: the socket, the file limit, worker processes, and the
timeouts of slow or idle connections (the drain on SIGTERM is lifecycle.py's). Imported only by
`charclf serve`: uvicorn (with httptools) is the serve extra."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import tempfile

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from charclf.errors import CharclfError
from charclf.server.metrics import MULTIPROCESS_ENV

MAX_HEADER_BYTES = 64 * 1024  # a request line and headers larger than this: 400, connection closed
FACTORY = "charclf.server.app:app_from_env"


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers (from the
    connection's start, or from the first byte of a later request on it) and a size limit on
    them: a client that connects and sends nothing, or drips its headers, is cut off.

    HttpToolsProtocol is not uvicorn's public API, but no public setting does this: uvicorn arms
    timeout_keep_alive only after a response, limit_concurrency answers 503 without closing idle
    connections, and h11_max_incomplete_event_size bounds size, not time (and only with h11). So
    pyproject.toml pins the uvicorn range this subclass is tested with (the hooks it overrides and
    the attributes it reads: loop, config, transport, send_400_response), and
    tests/test_serve_production.py checks the hooks and the deadline on the installed uvicorn."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.header_timer = None
        self.header_bytes = 0
        self.header_tail = b""  # the last bytes of the headers read so far: an end split between reads
        self.arm_header_timer()

    def arm_header_timer(self) -> None:
        self.header_timer = self.loop.call_later(self.config.charclf_header_seconds, self.header_timeout)

    def header_timeout(self) -> None:
        self.header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def data_received(self, data: bytes) -> None:
        if self.header_timer is not None:  # in a request's headers: counted before they are parsed,
            self.header_bytes += self.header_part(data)  # as they may all arrive in one read
            if self.header_bytes > MAX_HEADER_BYTES:
                self.disarm_header_timer()
                self.send_400_response("Request headers too large.")
                return
        super().data_received(data)

    def header_part(self, data: bytes) -> int:
        """How many bytes of `data` belong to the headers being read: up to the blank line that
        ends them (which may begin in the previous read), else all of it."""
        window = self.header_tail + data
        end = window.find(b"\r\n\r\n")
        self.header_tail = window[-3:]
        return len(data) if end < 0 else max(0, end + 4 - (len(window) - len(data)))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.header_timer is None:  # a later request on a kept-alive connection
            self.header_bytes, self.header_tail = 0, b""
            self.arm_header_timer()

    def on_headers_complete(self) -> None:
        self.disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self.disarm_header_timer()
        super().connection_lost(exc)


def raise_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (idle clients then run
    into the timeouts long before the limit); returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:  # in use, not an address of this machine, a privileged port ...
        sock.close()
        raise CharclfError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def run_server(app, sock: socket.socket, workers: int, log_level: str, header_seconds: float,
               idle_seconds: float) -> None:
    """Serve on `sock` until SIGTERM or Ctrl-C: `app` in this process, or with `workers` > 1 that
    many processes, each building its own app from FACTORY and the settings in the environment."""
    config = uvicorn.Config(app if workers == 1 else FACTORY, factory=workers > 1, workers=workers,
                            http=GuardedHttpProtocol, log_level=log_level, access_log=False, proxy_headers=False,
                            server_header=False, timeout_keep_alive=idle_seconds, timeout_graceful_shutdown=3)
    config.charclf_header_seconds = header_seconds  # read by GuardedHttpProtocol
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="charclf-metrics-")  # each worker's numbers, added up at /metrics
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
