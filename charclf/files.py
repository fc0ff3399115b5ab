"""Writing files so that a crash never leaves a torn one (standard library only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from charclf.errors import CheckpointError


def ensure_writable(path: Path) -> None:
    """Fail before hours of training, not after: the folder must exist (or be creatable) and take files."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot write to {path}: {e.strerror or e}") from None
    if path.is_dir():
        raise CheckpointError(f"cannot write to {path}: it is a folder")


def remove_stale_temps(path: Path) -> None:
    """Delete temp files that a killed writer of `path` left behind (see atomic_write)."""
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temp file beside `path`, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
