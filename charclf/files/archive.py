"""A torch.save file looked at without trusting it, before torch.load reads a byte of its tensors
(standard library only; torch only in torch_load, which reads a file these checks passed).

`open_regular(path)` then `outline(file, path)` check, in this order, and raise a one-line
CheckpointError at the first problem:
- it is a regular file (a device or a pipe could block a read forever, or never end);
- it is a zip archive as torch.save writes one (anything else "is not a charclf checkpoint");
- its pickle refers only to tensors and plain containers: it is replayed by a restricted
  unpickler whose tensors are stand-ins (TensorOutline) and which refuses every other class,
  so nothing in it can run;
- each tensor's data entry declares exactly the bytes its tensor needs, and all of them together
  stay under MAX_TENSOR_BYTES: an entry that inflates beyond what its tensor claims (a zip bomb)
  is refused before anything is inflated.
It returns the payload with TensorOutline stand-ins for the tensors, so that a checkpoint's
structure and shapes can be validated before any memory is spent on its weights.
"""

from __future__ import annotations

import collections
import os
import pickle
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from charclf.errors import CheckpointError
from charclf.files.atomic import kind_of

MAX_TENSOR_BYTES = 1 << 30  # 1 GiB of tensor data; the default model's checkpoint holds 0.6 MB
MAX_PICKLE_BYTES = 16 << 20  # the pickled structure (names, configs, history), not the tensors
MAX_SMALL_ENTRY_BYTES = 4096  # torch's bookkeeping entries: version, byteorder, serialization id
MAX_ENTRIES = 100_000
# torch.save writes each storage's type by name: its bytes per element.
ITEM_BYTES = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
              "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
              "UntypedStorage": 1}
DTYPES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
          "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
          "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8"}


@dataclass(frozen=True)
class StorageOutline:
    kind: str  # a key of ITEM_BYTES
    key: str  # its entry in the archive: <prefix>/data/<key>
    numel: int


@dataclass(frozen=True)
class TensorOutline:
    """What a tensor in the file claims to be, without its numbers."""

    storage: StorageOutline
    shape: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return DTYPES[self.storage.kind]


def open_regular(path: Path) -> BinaryIO:
    """Open `path` for reading, refusing anything but a regular file (without blocking on a pipe)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CheckpointError(f"{path} is {kind_of(mode)}, not a checkpoint file")
    return os.fdopen(fd, "rb")


def outline(file: BinaryIO, path: Path) -> object:
    """The payload of an open file (named `path` in messages), with TensorOutline in place of
    every tensor (see the module docstring)."""
    head = file.read(4)
    if head != b"PK\x03\x04":
        kind = "an empty file" if not head else "a plain pickle" if head[:1] == b"\x80" else "not a zip archive"
        raise CheckpointError(f"{path} is not a charclf checkpoint ({kind}; torch.save writes zip archives)")
    try:
        with zipfile.ZipFile(file) as archive:
            entries = _entries(archive)
            prefix = _prefix(entries)
            pickled = archive.read(entries[f"{prefix}/data.pkl"])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError,
            RuntimeError) as e:
        raise CheckpointError(f"{path} is a damaged or truncated checkpoint (its zip archive: {_one_line(e)})") \
            from None
    except CheckpointError as e:
        raise CheckpointError(f"{path} {e}") from None
    storages: dict[str, StorageOutline] = {}
    try:
        payload = _Outliner(pickled, storages).load()
        _check_sizes(entries, prefix, storages)
    except CheckpointError as e:
        raise CheckpointError(f"{path} {e}") from None
    except Exception as e:  # any malformed pickle: the restricted unpickler ran nothing
        raise CheckpointError(f"{path} is a damaged checkpoint (its pickle: {_one_line(e)})") from None
    return payload


def outline_file(path: Path) -> object:
    """outline() of the file at `path`."""
    with open_regular(path) as file:
        return outline(file, path)


def torch_load(file: BinaryIO, path: Path) -> object:
    """torch.load of a file outline() passed: tensors and plain containers only (weights_only),
    torch's warnings silenced, any failure one line (never torch's advice to load unsafely)."""
    import warnings

    import torch

    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        reason = "it holds objects charclf does not load" if "weights_only" in str(e) else _one_line(e).split(". ")[0]
        raise CheckpointError(f"{path} is a damaged checkpoint ({reason})") from None


def _entries(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"has {len(infos)} entries: not a charclf checkpoint")
    entries = {info.filename: info for info in infos}
    if len(entries) != len(infos):
        raise CheckpointError("is a damaged checkpoint (an entry appears twice in its zip archive)")
    return entries


def _prefix(entries: dict[str, zipfile.ZipInfo]) -> str:
    """torch.save puts everything under one folder (the file's stem when it was written)."""
    pickles = [name for name in entries if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError("is not a charclf checkpoint (a zip archive, but not one torch.save wrote)")
    prefix = pickles[0].removesuffix("/data.pkl")
    if entries[pickles[0]].file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"is not a charclf checkpoint (its pickle declares {entries[pickles[0]].file_size:,} "
                              f"bytes; a checkpoint's is far below {MAX_PICKLE_BYTES:,})")
    return prefix


def _check_sizes(entries: dict[str, zipfile.ZipInfo], prefix: str, storages: dict[str, StorageOutline]) -> None:
    """Each tensor entry declares exactly its tensor's bytes; all together stay under the cap."""
    total = 0
    for key, storage in storages.items():
        info = entries.get(f"{prefix}/data/{key}")
        if info is None:
            raise CheckpointError(f"is a damaged checkpoint (the data of tensor {key} is missing)")
        claimed = storage.numel * ITEM_BYTES[storage.kind]
        if info.file_size != claimed:
            raise CheckpointError(f"is a damaged or hostile checkpoint (tensor data {key} declares {info.file_size:,} "
                                  f"bytes, its tensor needs {claimed:,}); refused before inflating it")
        total += claimed
    if total > MAX_TENSOR_BYTES:
        raise CheckpointError(f"holds {total:,} bytes of tensors, more than the {MAX_TENSOR_BYTES:,} charclf loads")
    for name, info in entries.items():
        inside = name.removeprefix(prefix + "/")
        if name == f"{prefix}/data.pkl" or inside.startswith("data/") and inside[5:] in storages:
            continue
        if info.file_size > MAX_SMALL_ENTRY_BYTES:
            raise CheckpointError(f"is not a charclf checkpoint (an entry {inside!r} of {info.file_size:,} bytes "
                                  "that no tensor uses)")


class _Outliner(pickle.Unpickler):
    """Replays torch.save's pickle, building only plain containers and TensorOutline stand-ins."""

    def __init__(self, data: bytes, storages: dict[str, StorageOutline]):
        import io

        super().__init__(io.BytesIO(data))
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor_outline
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in ITEM_BYTES:
            return _StorageKind(name)
        if module == "torch" or module.startswith("torch."):
            raise CheckpointError(f"holds {module}.{name}, which a charclf checkpoint never holds (only dense "
                                  "tensors); refused")
        raise CheckpointError(f"holds objects that would run code when loaded ({module}.{name}); refused")

    def persistent_load(self, pid):
        # torch.save: ("storage", storage type, key, location, number of elements)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageKind)
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointError(f"is a damaged checkpoint (an unexpected storage reference {str(pid)[:60]})")
        storage = StorageOutline(pid[1].name, pid[2], pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise CheckpointError(f"is a damaged checkpoint (tensor data {storage.key} is described twice)")
        return storage


@dataclass(frozen=True)
class _StorageKind:
    name: str


def _tensor_outline(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    """Stands in for torch._utils._rebuild_tensor_v2: checks the view fits inside its storage."""
    if not (isinstance(storage, StorageOutline) and type(offset) is int and offset >= 0
            and isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(type(n) is int and n >= 0 for n in size + stride)):
        raise CheckpointError("is a damaged checkpoint (a malformed tensor)")
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if extent > storage.numel:
        raise CheckpointError(f"is a damaged checkpoint (a tensor of shape {list(size)} reaches past its data)")
    return TensorOutline(storage, size)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
