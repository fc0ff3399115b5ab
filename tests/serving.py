"""Starting `charclf serve` as a real process on a free port, for the serve tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `charclf serve` subprocess; its stderr goes to a file (read with .log())."""

    def __init__(self, tmp: Path, *args: str, env: dict | None = None, preexec_fn=None, wait: float = 90):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp / f"serve-{self.port}.log"
        environment = {**os.environ, "CHARCLF_HOME": str(tmp), "OMP_NUM_THREADS": "1", "CHARCLF_THREADS": "1",
                       **(env or {})}
        self.stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "charclf", "serve", "--port", str(self.port), *args],
                                        env=environment, stderr=self.stderr, stdout=subprocess.DEVNULL,
                                        preexec_fn=preexec_fn)
        deadline = time.monotonic() + wait
        while True:
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"the server was not ready within {wait} s:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def log(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait: its exit code (uvicorn ends a process by the signal it got: -SIGTERM)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.stderr.close()

    def kill(self) -> None:
        """Ends the process at once if it still runs (a failed test's cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()
