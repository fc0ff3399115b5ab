"""Writing files so that a crash never leaves a torn one (standard library only)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from charclf.errors import CheckpointError
from charclf.stopping import sigterm_raises


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


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words, from its st_mode."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def check_replaceable(path: Path) -> None:
    """atomic_write renames over `path`: that must replace nothing, or a regular file. Renaming over
    a device (/dev/null), a pipe or a folder would destroy it: OSError instead."""
    try:
        mode = os.stat(path).st_mode  # follows a symlink: what the user meant by the name
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there to destroy (whether the folder can be made is another question)
    except OSError as e:
        raise OSError(e.errno, f"cannot look at it ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        raise OSError(errno.EEXIST, f"it is {kind_of(mode)}, not a regular file (charclf replaces only regular files)")


def remove_stale_temps(path: Path) -> None:
    """Delete temp files that a killed writer of `path` left behind (see atomic_write)."""
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temp file beside `path`, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never a torn one; Ctrl-C or
    SIGTERM while writing also removes the temp file (SIGTERM then ends the process with code 143).
    """
    path = Path(path)
    check_replaceable(path)
    with sigterm_raises(f"stopped by SIGTERM; {path} was not written (an earlier one is as it was)"):
        _write_and_rename(path, write)


def _write_and_rename(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # Ctrl-C and SIGTERM (sigterm_raises) included: no temp file is left
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a failed write (a full disk) as a RuntimeError raised while handling
        # the OSError: that OSError is what the caller can explain.
        if isinstance(e, RuntimeError) and isinstance(e.__context__, OSError):
            raise e.__context__ from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
