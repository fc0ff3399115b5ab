"""A model carried to an engine's worker processes as bytes, and loaded once per process.

The driver reads the model file (ModelBytes.read); the engine ships the bytes to its workers
(a Spark broadcast, a Dask task's result); each worker process writes them to a file of its own
once and loads it with charclf.load (an .onnx file: ONNX Runtime, no torch), keeping the loaded
model for every later batch (worker_classifier). With $CHARCLF_LOAD_LOG set, each load appends
one line, "<pid> <model id>", to that file: a way to check how often workers load.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

LOAD_LOG_ENV = "CHARCLF_LOAD_LOG"
_LOADED: dict[str, object] = {}  # model id -> this process's loaded classifier
_LOCK = threading.Lock()  # a Dask worker's threads share the cache


@dataclass(frozen=True)
class ModelBytes:
    """A model file's bytes, its suffix (.onnx or .pt: which loader reads it) and its id."""

    data: bytes
    suffix: str
    id: str  # the first 16 hex digits of the bytes' sha256, as the `model` column says

    @classmethod
    def read(cls, model: str | os.PathLike | None = None) -> "ModelBytes":
        """The file `model`, else charclf's default model (an .onnx beside it preferred)."""
        from charclf.files.archive import open_regular  # refuses pipes, devices and folders

        path = Path(model) if model is not None else default_model()
        with open_regular(path) as f:
            data = f.read()
        return cls(data, path.suffix.lower(), hashlib.sha256(data).hexdigest()[:16])


def default_model() -> Path:
    """charclf's default model (the one `charclf train` last wrote, else the shipped one): the file
    that answers for it, its current .onnx export where there is one, so that workers need no torch."""
    from charclf.predict.loading import load

    return load(None).path


def worker_classifier(model: ModelBytes, threads: int = 1):
    """This process's classifier for `model`, loaded on first use with `threads` threads and
    kept: every later batch (any task, any thread) in this process reuses it."""
    with _LOCK:
        clf = _LOADED.get(model.id)
        if clf is None:
            clf = _LOADED[model.id] = _load(model, threads)
    return clf


def _load(model: ModelBytes, threads: int):
    import charclf

    folder = Path(tempfile.gettempdir()) / f"charclf-models-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{model.id}{model.suffix}"
    if not path.is_file() or path.stat().st_size != len(model.data):
        part = path.with_name(f"{path.name}.{os.getpid()}.part")  # another process may be writing it too
        part.write_bytes(model.data)
        part.replace(path)
    clf = charclf.load(path, device="cpu", threads=threads)
    if os.environ.get(LOAD_LOG_ENV):
        with open(os.environ[LOAD_LOG_ENV], "a", encoding="utf-8") as log:  # one short append: whole lines
            log.write(f"{os.getpid()} {model.id}\n")
    return clf
