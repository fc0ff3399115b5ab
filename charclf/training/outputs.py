"""Where a training run may write, decided before it trains: a careless --out must never replace a
device, a pipe or a folder, a file of the dataset, or a file that is not a charclf checkpoint
(unless forced); and two runs must never write the same checkpoint at once (a lock beside it)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

from charclf.errors import CheckpointError
from charclf.files.atomic import check_replaceable, ensure_writable
from charclf.files.outputs import check_output, inside_dataset, is_checkpoint

SIDE_KINDS = {".json": "text", ".png": "picture", ".onnx": "onnx"}  # by suffix (charclf.files.outputs.KINDS)


class OutputUsageError(CheckpointError):
    """An --out that the run's own files would overwrite (a checkpoint named like its export): fix the
    command (exit 2)."""

    exit_code = 2


def prepare_output(out: Path, data: Path | None, force: bool = False, side_files: Sequence[Path] = (),
                   flag: str = "--out") -> None:
    """Refuse `out` (and the files written beside it) when writing there would destroy something
    not ours; then make sure its folder takes files. Nothing is written when it refuses. `flag`: the
    option the refusal names (`--out` offers --force; compare's `--out-dir` has none)."""
    out = Path(out)
    if str(out).lower() in {str(p).lower() for p in side_files}:  # a side file would replace the trained model
        raise OutputUsageError(f"--out {out}: --out names the .pt checkpoint training writes, and a file it writes "
                               f"beside it has the same name; use --out {out.with_suffix('.pt')} (its ONNX export "
                               f"is written beside it as {out.with_suffix('.onnx').name})")
    for path in (out, *side_files):
        try:
            check_replaceable(path)
        except OSError as e:
            raise CheckpointError(f"will not write {path}: {e.strerror}; choose another {flag}") from None
    if data is not None:
        _refuse_inside_dataset(out, Path(data), side_files)
    for path in side_files:  # an earlier run's side files are replaced; a file of another kind is not
        kind = SIDE_KINDS.get(Path(path).suffix.lower())
        if kind is not None:
            check_output(path, kind, [out, data], data)
    if not force and os.path.lexists(out) and not is_checkpoint(out):
        offer = "pass --force to replace it, or " if flag == "--out" else ""
        raise CheckpointError(f"{out} exists and is not a charclf checkpoint: {offer}choose another {flag}")
    ensure_writable(out)


def _refuse_inside_dataset(out: Path, data: Path, side_files: Sequence[Path]) -> None:
    for path in (out, *side_files):
        if inside_dataset(Path(path), data):
            raise CheckpointError(f"will not write {Path(path).resolve()}: it is inside the dataset {data.resolve()}; "
                                  "choose an --out outside it")


@contextlib.contextmanager
def output_lock(out: Path, enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on .<out name>.lock beside `out` while the run writes; a second run
    of the same --out fails at once instead of interleaving its saves with the first's."""
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    lock = Path(out).parent / f".{Path(out).name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CheckpointError(f"another charclf run is writing {out} now; wait for it to end, or choose "
                                  "another --out") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break  # the lock file is still the one in the folder (not removed by a run ending)
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
