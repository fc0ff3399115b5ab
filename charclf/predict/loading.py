"""Which model file answers, and through which backend.

A model is a .pt checkpoint (what training writes and reads) and, beside it, its .onnx export
(`charclf train` writes both; the shipped model comes as both). The .onnx records the sha256 of
the .pt it was exported from, so it is used in the checkpoint's place only while the two match: the
.pt's bytes hash to that sha256 and the description in the .pt (read without torch:
charclf.files.archive) is the one in the .onnx's metadata.

A model's id (the `model` column) is the first 16 hex digits of the sha256 of bytes charclf has read:
a .pt's own; an .onnx's own, or, when it is verified as the export of the .pt beside it (as
above), that .pt's, so that both backends name the model alike. What a file's metadata claims
is never an id by itself.
backend "auto" (the default) takes the .onnx through ONNX Runtime when it is there and current and
nothing asks for torch (a GPU, bfloat16); "onnx" insists on it; "torch" insists on the .pt."""

from __future__ import annotations

import os
from pathlib import Path

from charclf.config import BACKENDS
from charclf.errors import CharclfError, CheckpointError
from charclf.extras import available
from charclf.files.locations import resolve_checkpoint
from charclf.predict.classifier import Classifier
from charclf.predict.onnx_runtime import MAX_BYTES, OnnxBackend, is_onnx, sha256_of
from charclf.predict.precision import precision_name
from charclf.threads import checked

TORCH_NEEDED = "reading a .pt checkpoint needs torch"


class BackendError(CharclfError):
    """A backend was asked for that this model file or this install cannot give."""

    exit_code = 2


def load(path: str | os.PathLike | None = None, device="auto", precision: str | None = None, threads: int = 1,
         backend: str = "auto") -> Classifier:
    """A Classifier for `path` (None: the default model, else the shipped one; see
    files.locations.resolve_checkpoint), through the backend the module's text describes."""
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    checked(threads)
    path = resolve_checkpoint(path)
    if is_onnx(path):
        if backend == "torch":
            raise BackendError(f"{path} is an ONNX export: the torch backend needs the .pt checkpoint")
        if str(device) not in ("auto", "cpu") or precision_name(precision) != "float32":
            raise BackendError(f"{path}: a .onnx model runs on the CPU (ONNX Runtime), in float32")
        return _onnx(path, threads)
    twin = path.with_suffix(".onnx")
    wants_torch = backend == "torch" or str(device) not in ("auto", "cpu") or precision_name(precision) != "float32"
    if backend == "onnx" or (not wants_torch and twin.is_file() and available("onnxruntime")):
        clf = _current_twin(path, twin, threads, required=backend == "onnx")
        if clf is not None:
            return clf
    if not available("torch"):
        from charclf.extras import install_command

        raise CheckpointError(f"{path}: {TORCH_NEEDED}: {install_command('train')} (or predict from its .onnx export)")
    return _torch(path, device, precision)


def _current_twin(path: Path, twin: Path, threads: int, required: bool) -> Classifier | None:
    """The .onnx beside `path` as a Classifier if it is the export of `path` as it is now; else None
    (or, when `required`, one line saying why it cannot be used)."""
    if not (twin.is_file() and path.is_file() and path.stat().st_size <= MAX_BYTES):  # hashed whole, below
        if required:
            raise BackendError(f"no {twin.name} beside {path} for the onnx backend: run "
                               f"`charclf export {twin} --checkpoint {path}`")
        return None
    backend = OnnxBackend(twin, threads)
    source = exported_from(backend, path)
    if source:
        return Classifier(backend.description, backend, twin, model_id=source)
    if required:
        raise BackendError(f"{twin} is not the export of {path} as it is now: run "
                           f"`charclf export {twin} --checkpoint {path}` again")
    return None


def exported_from(backend: OnnxBackend, checkpoint: Path) -> str | None:
    """The sha256 of `checkpoint` if the .onnx `backend` reads is its export as it is now: the
    sha256 its metadata records is the file's, and so is its description (the labels, alphabet,
    calibration ...: read from the checkpoint without torch). Else None."""
    from charclf.files.archive import outline_file
    from charclf.files.description import describe

    try:
        if not (backend.source and checkpoint.is_file() and backend.source == sha256_of(checkpoint)):
            return None
        described = describe(outline_file(checkpoint))
    except (OSError, CharclfError):
        return None
    return backend.source if described.as_payload() == backend.description.as_payload() else None


def _onnx(path: Path, threads: int) -> Classifier:
    """An .onnx file alone: named by the .pt beside it if it is verified as its export, else by itself."""
    backend = OnnxBackend(path, threads)
    source = exported_from(backend, path.with_suffix(".pt"))
    return Classifier(backend.description, backend, path, model_id=source or sha256_of(path))


def _torch(path: Path, device, precision: str | None) -> Classifier:
    from charclf.predict.torch_backend import TorchBackend

    backend = TorchBackend.load(path, device, precision)
    return Classifier(backend.checkpoint, backend, path)
