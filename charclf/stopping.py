"""SIGTERM (kill, a container or a service stopping) turned into an exception while charclf holds
something to clean up: a temp file being written (charclf.files.atomic), a partial download
(charclf.data.fetch). The default action ends the process at once and leaves them behind; raised
instead, the writer's own cleanup runs, as it does for Ctrl-C, and the process ends with the
shell's code for SIGTERM (143) and one line saying what was left as it was."""

from __future__ import annotations

import contextlib
import signal
import threading

from charclf.errors import CharclfError


class Terminated(CharclfError):
    """SIGTERM arrived while charclf was writing: what it was writing was removed first."""

    exit_code = 128 + signal.SIGTERM  # the shell's convention for a process ended by SIGTERM


@contextlib.contextmanager
def sigterm_raises(message: str):
    """While inside, SIGTERM raises Terminated(`message`) in the main thread. Left alone off the
    main thread (signals reach only it), and where a handler is already set (an outer block, a
    server's own drain)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise Terminated(message)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
