"""A model carried to an engine's worker processes as bytes, and loaded once per process.

The driver reads the model file (ModelBytes.read) and names it by the id charclf.load gives it
there (charclf.predict.loading: from bytes it has verified); the engine ships the bytes to its
workers (a Spark broadcast, a Dask task's result); each worker process writes them to a file of its
own once and loads it with charclf.load (an .onnx file: ONNX Runtime, no torch), keeping the loaded
model for every later batch (worker_classifier). With $CHARCLF_LOAD_LOG set, each load appends one
line, "<pid> <model id>", to that file: a way to check how often workers load.

The files live in a cache folder of this user's (model_cache): $TMPDIR/charclf-models-<uid>,
used only when lstat finds a real folder (not a link) that this user owns and no one else may
enter; else a fresh private folder. A cached file is used only when its bytes hash to the sha256
the driver sent; anything else there is written again, through a new file opened with O_EXCL and
O_NOFOLLOW (a planted link is never followed), then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

LOAD_LOG_ENV = "CHARCLF_LOAD_LOG"
_LOADED: dict[str, object] = {}  # sha256 -> this process's loaded classifier
_LOCK = threading.Lock()  # a Dask worker's threads share the cache
_PRIVATE: list[Path] = []  # this process's own cache folder, when the shared one is not safe to use
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class ModelBytes:
    """A model file's bytes, its suffix (.onnx or .pt: which loader reads it), their sha256, and the
    model's id (what the `model` column says: charclf.load's id for the file on the driver)."""

    data: bytes
    suffix: str
    sha256: str
    id: str

    @classmethod
    def read(cls, model: str | os.PathLike | None = None) -> "ModelBytes":
        """The file `model`, else charclf's default model (an .onnx beside it preferred)."""
        from charclf.files.archive import open_regular  # refuses pipes, devices and folders
        from charclf.predict.loading import load

        path = Path(model) if model is not None else default_model()
        with open_regular(path) as f:
            data = f.read()
        sha256, suffix = hashlib.sha256(data).hexdigest(), path.suffix.lower()
        # A .pt is named by its own bytes; an .onnx by charclf.load (its own bytes, or the .pt beside
        # it that it is verified to be the export of).
        return cls(data, suffix, sha256, load(path).model_id if suffix == ".onnx" else sha256[:16])


def default_model() -> Path:
    """charclf's default model (the one `charclf train` last wrote, else the shipped one): the file
    that answers for it, its current .onnx export where there is one, so that workers need no torch."""
    from charclf.predict.loading import load

    return load(None).path


def worker_classifier(model: ModelBytes, threads: int = 1):
    """This process's classifier for `model`, loaded on first use with `threads` threads and
    kept: every later batch (any task, any thread) in this process reuses it."""
    with _LOCK:
        clf = _LOADED.get(model.sha256)
        if clf is None:
            clf = _LOADED[model.sha256] = _load(model, threads)
    return clf


def _load(model: ModelBytes, threads: int):
    from charclf.predict.classifier import Classifier
    from charclf.predict.loading import load

    path = cached(model)
    clf = load(path, device="cpu", threads=threads)
    clf = Classifier(clf.checkpoint, clf.backend, path, model_id=model.id)  # the id the driver verified
    if os.environ.get(LOAD_LOG_ENV):
        with open(os.environ[LOAD_LOG_ENV], "a", encoding="utf-8") as log:  # one short append: whole lines
            log.write(f"{os.getpid()} {model.id}\n")
    return clf


def cached(model: ModelBytes) -> Path:
    """The file in this user's cache folder that holds exactly `model`'s bytes (written if not)."""
    path = model_cache() / f"{model.sha256[:32]}{model.suffix}"
    if _holds(path, model.sha256):
        return path
    part = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    with _exclusive(part) as f:
        f.write(model.data)
    os.replace(part, path)  # renames the link itself if one was planted; never writes through it
    return path


def model_cache() -> Path:
    """$TMPDIR/charclf-models-<uid> if it is a real folder of this user's that no one else may
    enter (created so), else a fresh private folder for this process."""
    if _PRIVATE:
        return _PRIVATE[0]
    folder = Path(tempfile.gettempdir()) / f"charclf-models-{os.getuid() if hasattr(os, 'getuid') else 0}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return _private()
    return folder if _is_private(folder) else _private()


def _is_private(folder: Path) -> bool:
    """lstat: a folder (a link to one does not count), owned by this user, closed to everyone else."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
    return stat.S_ISDIR(info.st_mode) and info.st_uid == owner and not info.st_mode & 0o077


def _private() -> Path:
    """A new folder of this process's (0700, this user's), removed when the process ends."""
    import atexit
    import shutil

    _PRIVATE.append(Path(tempfile.mkdtemp(prefix="charclf-models-")))
    atexit.register(shutil.rmtree, _PRIVATE[0], ignore_errors=True)
    return _PRIVATE[0]


def _holds(path: Path, sha256: str) -> bool:
    """Whether `path` is a regular file (not a link) whose bytes hash to `sha256`."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        return stat.S_ISREG(os.fstat(fd).st_mode) and hashlib.file_digest(f, "sha256").hexdigest() == sha256


def _exclusive(part: Path):
    """`part` opened for writing as a new file of this user's only: a file or link already there (left
    by a process that died) is removed first, never written through."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
    try:
        fd = os.open(part, flags, 0o600)
    except FileExistsError:
        part.unlink()
        fd = os.open(part, flags, 0o600)
    return os.fdopen(fd, "wb")
