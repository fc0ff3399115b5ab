"""Download the PyTorch tutorial's names dataset, verify it, then install it.

The archive is checked against a sha256 manifest before a single file lands in
the destination folder: the files are collected in a temporary folder beside
the destination (same filesystem, so the final ``os.replace`` is atomic) and
moved into place only when every file is present and matches. On any failure a
:class:`~charclf.errors.FetchError` is raised and nothing is left behind.

This module must stay light: standard library and tqdm only, no torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from charclf.errors import FetchError
from charclf.stopping import sigterm_raises

OFFICIAL_URL = "https://download.pytorch.org/tutorial/data.zip"

_CHUNK = 64 * 1024
# The real names files are at most a few hundred KB (all 18 together: under 1 MB); a member, or all
# of them together, far bigger is not this dataset (or is a zip bomb): refused before decompressing.
_MAX_MEMBER_BYTES = 64 * 1024 * 1024
# The real data.zip is under 3 MB: a download far bigger is not it, and would only fill the disk.
_MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
# A file name we are willing to write: no path separators, no leading dot.
_PLAIN_TXT = re.compile(r"\w[\w .-]*\.txt")
# sha256sum output: "<hash>  <name>" (text mode) or "<hash> *<name>" (binary mode).
_MANIFEST_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")

_DATA_HINT = "download the archive yourself and point --data (or CHARCLF_DATA) at its data/names folder."
_TRUST_HINT = "Pass --manifest FILE with the checksums you trust, or " + _DATA_HINT


def fetch_dataset(
    dest: Path,
    url: str = OFFICIAL_URL,
    manifest: Path | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> list[str]:
    """Download, verify, install into `dest` (a folder that will hold <Label>.txt files).

    Returns the sorted list of file names installed.
    """
    dest = Path(dest)
    expected = read_manifest(manifest)
    # Fail before downloading megabytes we could not install anyway.
    _check_dest(dest, force, expected)

    # SIGTERM (kill, a container stopping) raises instead of ending the process at once, so that the
    # cleanup below runs: the default action would leave the partial download beside --dest for good.
    with sigterm_raises("stopped by SIGTERM; the partial download was removed and nothing was written"):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            # One private folder beside dest holds the download, the new files and
            # (with force) the old folder; removing it is the whole cleanup.
            work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.fetch-"))
        except OSError as exc:
            raise FetchError(f"cannot write beside {dest}: {_one_line(exc)}; nothing was written.") from exc
        try:
            return _fetch_into(work, dest, url, expected, force, progress, timeout)
        finally:
            # If the old folder could not be put back it is the only copy of the user's data: keep it.
            if not ((work / "old").exists() and not dest.exists()):
                shutil.rmtree(work, ignore_errors=True)


def _fetch_into(work: Path, dest: Path, url: str, expected: dict[str, str], force: bool, progress: bool,
                timeout: float) -> list[str]:
    """fetch_dataset's steps, in the private folder `work` beside `dest`."""
    archive = work / "archive.zip"
    _download(url, archive, progress, timeout)
    contents = _read_names(archive, url, expected)
    _verify(contents, expected, url)

    new = work / "new"
    try:
        new.mkdir()
        for name in sorted(contents):
            (new / name).write_bytes(contents[name])
    except OSError as exc:
        raise FetchError(f"cannot write the dataset beside {dest}: {_one_line(exc)}; nothing was written.") from exc

    _install(new, dest, work / "old", force, expected)
    return sorted(contents)


def read_manifest(manifest: Path | None = None) -> dict[str, str]:
    """Read a sha256sum-style manifest into {file name: lowercase hex digest}.

    `None` means the manifest shipped inside the package (charclf/data/names.sha256).
    """
    where = "the packaged checksum manifest" if manifest is None else f"checksum manifest {manifest}"
    try:
        if manifest is None:
            text = _packaged_manifest_text()
        else:
            text = Path(manifest).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError(f"cannot read {where}: {_one_line(exc)}") from exc

    expected: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None or not _PLAIN_TXT.fullmatch(match.group(2)):
            raise FetchError(f"line {number} of {where} is not '<sha256>  <File>.txt': {line[:80]!r}")
        digest, name = match.group(1).lower(), match.group(2)
        if name in expected:
            raise FetchError(f"{where} lists {name} twice (line {number})")
        expected[name] = digest
    if not expected:
        raise FetchError(f"{where} lists no files")
    return expected


def _packaged_manifest_text() -> str:
    return (resources.files("charclf.data") / "names.sha256").read_text(encoding="utf-8")


def _check_dest(dest: Path, force: bool, expected: dict[str, str]) -> None:
    """`dest` may be absent or empty; with `force`, it may hold what an earlier fetch installed (the
    manifest's names files, nothing else): --force never deletes a file charclf did not write."""
    try:
        is_file = dest.exists() and not dest.is_dir()
        entries = sorted(dest.iterdir()) if dest.is_dir() else []
        foreign = [p.name for p in entries if p.name not in expected or p.is_symlink() or not p.is_file()]
    except OSError as exc:
        raise FetchError(f"cannot look into {dest}: {_one_line(exc)}; nothing was written.") from exc
    if is_file:
        raise FetchError(f"{dest} exists and is not a folder; remove it or choose another --dest.")
    if foreign:
        more = f" and {len(foreign) - 1:,} more" if len(foreign) > 1 else ""
        raise FetchError(f"{dest} holds {foreign[0][:60]!r}{more}, which charclf did not fetch: choose a new or empty "
                         "--dest (--force replaces only the names files an earlier fetch installed); nothing was "
                         "written.")
    if entries and not force:
        raise FetchError(f"{dest} already holds the names dataset; pass --force to download it again and replace "
                         "those files.")


def _download(url: str, target: Path, progress: bool, timeout: float) -> None:
    """Stream `url` into `target`; every network problem becomes a FetchError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > _MAX_ARCHIVE_BYTES:
                raise FetchError(_too_big(url, f"is {total:,} bytes"))
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="data.zip",
                      disable=not progress, file=sys.stderr, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    received += len(chunk)
                    if received > _MAX_ARCHIVE_BYTES:
                        raise FetchError(_too_big(url, "goes on past that"))
                    out.write(chunk)
                    bar.update(len(chunk))
            # A connection that drops early can look like a clean end of data.
            if total is not None and received < total:
                raise FetchError(_download_failed(url, f"the connection closed after {received} of {total} bytes"))
    except FetchError:
        raise
    # URLError/HTTPError and timeouts are OSErrors; ValueError is a malformed or unknown URL.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # HTTPError reads best whole ("HTTP Error 404: Not Found"); URLError's reason is the real cause.
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise FetchError(_download_failed(url, _one_line(reason))) from exc


def _too_big(url: str, what: str) -> str:
    return (f"the download from {url} {what}: the names archive is under {_MAX_ARCHIVE_BYTES // 2**20} MB, so "
            f"this is not it; nothing was written. {_TRUST_HINT}")


def _download_failed(url: str, reason: str) -> str:
    return f"could not download {url}: {reason}; nothing was written. Check the network, or {_DATA_HINT}"


def _read_names(archive: Path, url: str, expected: dict[str, str]) -> dict[str, bytes]:
    """Return {basename: bytes} for every file directly inside a `names/` folder of the zip.

    Member paths are only ever used to pick files, never to write them, so a
    crafted path ("../../x", "/etc/x") cannot escape the destination. Nothing is
    inflated before the members' names are the manifest's and their declared sizes,
    each and together, fit a names dataset (a zip bomb is refused unopened; a member
    that inflates past its declared size is cut there by zipfile and fails its CRC).
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _names_members(zf, url)
            _verify_names(set(members), expected, url)
            total = sum(info.file_size for info in members.values())
            if total > _MAX_MEMBER_BYTES:
                raise FetchError(f"the names files in the archive at {url} would inflate to {total:,} bytes, far "
                                 f"more than a names dataset; nothing was written. {_TRUST_HINT}")
            # read() checks the CRC, so corrupt data fails here.
            return {name: zf.read(info) for name, info in members.items()}
    except FetchError:
        raise
    # Corrupt or truncated archives surface as any of these, depending on where the damage is;
    # RuntimeError/NotImplementedError are encrypted members and unknown compression methods.
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise FetchError(
            f"the file at {url} is not a valid zip archive ({_one_line(exc)}); nothing was written. "
            f"Try again, or {_DATA_HINT}"
        ) from exc


def _names_members(zf: zipfile.ZipFile, url: str) -> dict[str, zipfile.ZipInfo]:
    """{basename: entry} of the files directly inside a `names/` folder, read off the zip's directory."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        # Zips made on Windows may use backslashes; treat them as separators.
        parts = info.filename.replace("\\", "/").split("/")
        if len(parts) < 2 or parts[-2] != "names":
            continue
        name = parts[-1]
        if not _PLAIN_TXT.fullmatch(name):
            raise FetchError(f"the archive at {url} has an unexpected file {info.filename!r} in its names folder; "
                             f"nothing was written. {_TRUST_HINT}")
        if name in members:
            raise FetchError(f"the archive at {url} holds {name} twice; nothing was written. {_TRUST_HINT}")
        if info.file_size > _MAX_MEMBER_BYTES:
            raise FetchError(f"{name} in the archive at {url} is {info.file_size} bytes, far too big for a names "
                             f"file; nothing was written. {_TRUST_HINT}")
        members[name] = info
    return members


def _verify_names(names: set[str], expected: dict[str, str], url: str) -> None:
    """Every manifest file present, and nothing else."""
    missing = sorted(set(expected) - names)
    if missing:
        raise FetchError(
            f"{missing[0]} is missing from the archive at {url} (expected in a names/ folder); "
            f"nothing was written. {_TRUST_HINT}"
        )
    extra = sorted(names - set(expected))
    if extra:
        raise FetchError(
            f"the archive at {url} has names files the manifest does not list ({', '.join(extra)}); "
            f"nothing was written. {_TRUST_HINT}"
        )


def _verify(contents: dict[str, bytes], expected: dict[str, str], url: str) -> None:
    """Every manifest file with the right sha256."""
    for name in sorted(expected):
        got = hashlib.sha256(contents[name]).hexdigest()
        if got != expected[name]:
            raise FetchError(
                f"checksum mismatch for {name} (expected {expected[name][:8]}..., got {got[:8]}...): "
                f"the archive at {url} is not the dataset this charclf knows; nothing was written. {_TRUST_HINT}"
            )


def _install(new: Path, dest: Path, old: Path, force: bool, expected: dict[str, str]) -> None:
    """Move `new` to `dest`; an existing `dest` (only names files: _check_dest) is first moved to
    `old` (the caller deletes it)."""
    # Checked again: dest may have been filled while we were downloading.
    _check_dest(dest, force, expected)
    try:
        if dest.exists():
            os.replace(dest, old)
    except OSError as exc:
        raise FetchError(f"cannot move {dest} aside: {_one_line(exc)}; nothing was changed.") from exc
    try:
        os.replace(new, dest)
    except OSError as exc:
        if old.exists():
            try:
                os.replace(old, dest)
            except OSError:
                raise FetchError(
                    f"cannot install into {dest} ({_one_line(exc)}) nor put the old folder back; "
                    f"it is at {old}."
                ) from exc
        raise FetchError(f"cannot install into {dest}: {_one_line(exc)}; nothing was changed.") from exc


def _one_line(value: object) -> str:
    """Error text on one line, whatever the exception put in it."""
    return " ".join(str(value).split()) or type(value).__name__
