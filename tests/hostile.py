"""Hostile and broken checkpoint files, made from a real one (tests and scripts/hardening_cases.sh).

Each maker takes a valid checkpoint file `good` and writes a damaged copy to `path`."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import torch


def _payload(good: Path) -> dict:
    return torch.load(good, map_location="cpu", weights_only=True)


def mutated(good: Path, path: Path, change) -> Path:
    """A copy of `good` whose payload went through change(payload)."""
    payload = _payload(good)
    change(payload)
    torch.save(payload, path)
    return path


def zip_bomb(good: Path, path: Path, inflated: int = 2 << 30) -> Path:
    """`good` with its first tensor entry replaced by `inflated` zero bytes, deflated: a file of
    a few MB whose entry declares (and inflates to) `inflated` bytes."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                target = zipfile.ZipInfo(info.filename)
                target.compress_type = zipfile.ZIP_DEFLATED
                with out.open(target, "w", force_zip64=True) as entry:
                    chunk = bytes(1 << 24)
                    for _ in range(inflated // len(chunk)):
                        entry.write(chunk)
                    entry.write(bytes(inflated % len(chunk)))
            else:
                out.writestr(info, src.read(info))
    return path


def code_running_pickle(path: Path, marker: Path) -> Path:
    """A torch file whose unpickling would create `marker`."""

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": 2, "model": Evil()}, path)
    return path


def sparse_weights(good: Path, path: Path) -> Path:
    def change(payload):
        key = next(iter(payload["model"]))
        payload["model"][key] = payload["model"][key].to_sparse()
    return mutated(good, path, change)


def raw_pickle(good: Path, path: Path) -> Path:
    """The payload pickled by the standard library, not torch.save's zip archive."""
    payload = {k: v for k, v in _payload(good).items() if k != "model"}
    path.write_bytes(pickle.dumps(payload))
    return path


def png(path: Path) -> Path:
    """A real PNG (any file that is not a checkpoint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.figure(figsize=(1, 1)).savefig(buffer, format="png")
    path.write_bytes(buffer.getvalue())
    return path
