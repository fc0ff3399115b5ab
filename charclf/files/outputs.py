"""One guard for every file charclf writes (tables, text, pictures, exported models, side files):
decided before anything is computed or written, so that a careless path never destroys what was
there. Standard library only.

An output may replace nothing, or an earlier output of the same kind. It may never be:
- anything but a regular file (a folder, a pipe, a device: /dev/null included, a socket), judged
  through symlinks: to discard or pipe an output, leave out the option and use stdout;
- one of the command's inputs (the same file by device and inode, so a symlink or a hard link to
  it counts too): the table read, the model file, the prior, the dataset;
- a file inside the command's dataset, or one that looks like a dataset's names file (a <Label>.txt
  of names, one per line, in a folder of several .txt files);
- an existing file of another kind: a checkpoint or other zip archive, a picture or another binary
  file where text is asked for, text where a picture is asked for, anything but an earlier export
  where a model is exported.
A picture needs a picture's extension (PICTURES). Each refusal is one line (OutputError)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from charclf.errors import CharclfError
from charclf.files.atomic import check_replaceable

PICTURES = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}  # suffix -> format
KINDS = ("text", "picture", "onnx", "torchscript")  # what a command writes (a table, JSON: text)
_SNIFF = 4096  # bytes read from an existing file to tell its kind
_MAGIC = ((b"PK\x03\x04", "a zip archive (a charclf checkpoint, say)"), (b"\x89PNG", "a PNG picture"),
          (b"%PDF", "a PDF document"), (b"\xff\xd8\xff", "a JPEG picture"))
_NAME_LINE = re.compile(r"[^\d,;|\t=<>{}\[\]]{1,100}")  # a line of a names file: no digits, delimiters, markup


class OutputError(CharclfError):
    """An output path that would destroy something, or that cannot hold what is asked for."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def check_output(path: str | os.PathLike, kind: str, inputs: Iterable[str | os.PathLike | None] = (),
                 data: str | os.PathLike | None = None, option: str = "--out") -> Path:
    """Refuse `path` as the output of `kind` (KINDS) of a command reading `inputs` (files; None and
    '-' are skipped) and the dataset `data`, with one line naming why; else return it as a Path."""
    path = Path(path)
    if kind == "picture" and path.suffix.lower() not in PICTURES:
        raise OutputError(f"will not write a picture to {path}: {option} needs one of the extensions "
                          f"{', '.join(PICTURES)}", exit_code=2)
    try:
        check_replaceable(path)
    except OSError as e:
        raise OutputError(f"will not write {path}: {e.strerror}; to discard or pipe it, leave out {option} "
                          "and redirect stdout") from None
    same = _same_as(path, inputs)
    if same is not None:
        raise OutputError(f"will not write {path}: it is this command's input {same}; choose another {option}")
    if data is not None and inside_dataset(path, Path(data)):
        raise OutputError(f"will not write {path}: it is inside the dataset {data}; choose another {option}")
    existing = existing_kind(path)
    if existing is not None and not _replaceable(existing, kind):
        raise OutputError(f"will not write {path}: it is {existing}, not an earlier {_WORDS[kind]}; remove it "
                          f"first or choose another {option}")
    return path


_WORDS = {"text": "text output", "picture": "picture", "onnx": "ONNX export", "torchscript": "TorchScript export"}


def _replaceable(existing: str, kind: str) -> bool:
    if existing == "empty":
        return True
    if kind == "picture":
        return existing.endswith("picture") or existing in ("a PDF document", "an SVG picture")
    if kind == "text":
        return existing == "text"
    if kind == "torchscript":
        return existing.startswith("a zip archive")
    return existing == "binary"  # onnx: a protobuf, nothing that is text, a picture or a zip archive


def existing_kind(path: Path) -> str | None:
    """What a file already at `path` is, in words (None: nothing there): "empty", "text", "binary",
    "an SVG picture", "a names file of a dataset", a charclf checkpoint, or a _MAGIC kind."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise OutputError(f"will not write {path}: cannot look at it ({e.strerror})") from None
    if not head:
        return "empty"
    for magic, words in _MAGIC:
        if head.startswith(magic):
            return "a charclf checkpoint" if magic == b"PK\x03\x04" and is_checkpoint(path) else words
    text = _as_text(head)
    if text is None:
        return "binary"
    if text.lstrip().startswith(("<svg", "<?xml")) and "<svg" in text:
        return "an SVG picture"
    return "a names file of a dataset" if _names_file(path, text) else "text"


def _as_text(head: bytes) -> str | None:
    """The first bytes as UTF-8 text (a character cut at the end forgiven), or None for binary."""
    if b"\x00" in head:
        return None
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _names_file(path: Path, text: str) -> bool:
    """A <Label>.txt of names, one per line (the dataset's layout), beside other .txt files."""
    if path.suffix != ".txt":
        return False
    lines = [line.strip() for line in text.splitlines()[:50] if line.strip()]
    if not lines or not all(_NAME_LINE.fullmatch(line) for line in lines):
        return False
    return sum(1 for _ in zip(range(2), path.parent.glob("*.txt"))) >= 2


def is_checkpoint(path: Path) -> bool:
    """A file charclf wrote: a torch archive holding a payload with a format and a model config
    (read as archive.outline does: no tensor is loaded, nothing is run)."""
    from charclf.errors import CheckpointError
    from charclf.files.archive import outline_file

    try:
        payload = outline_file(path)
    except (CheckpointError, OSError):
        return False
    return isinstance(payload, dict) and "format" in payload and "model_config" in payload


def _same_as(path: Path, inputs: Iterable[str | os.PathLike | None]) -> str | None:
    """The input that `path` is (the same file by device and inode, through symlinks), if any."""
    try:
        target = os.stat(path)
    except OSError:
        return None  # nothing there yet: it cannot be an input
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        try:
            info = os.stat(source)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
            return str(source)
    return None


def inside_dataset(path: Path, data: Path) -> bool:
    """Whether `path` is the dataset `data` or a file in its folder (through symlinks)."""
    try:
        data, path = data.resolve(), path.resolve()
    except OSError:
        return False
    return path == data or (data.is_dir() and data in path.parents)
