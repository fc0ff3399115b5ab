"""The fetch tests' ground: zips built from the real dataset (the tests are skipped without it),
served by a real HTTP server on 127.0.0.1 that lives as long as the test module using it.
Nothing is mocked: the archives are real zips and the downloads go through urllib."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest

from charclf.data.fetch import fetch_dataset, read_manifest

SOURCE = Path(os.environ.get("CHARCLF_DATA") or Path(__file__).resolve().parents[1] / "data/names")

if not SOURCE.is_dir() and os.environ.get("CI"):
    raise RuntimeError(f"the names dataset is missing at {SOURCE} (set CHARCLF_DATA)")
if not SOURCE.is_dir():
    pytest.skip(
        f"the names dataset is not at {SOURCE}; set CHARCLF_DATA to its data/names folder",
        allow_module_level=True,
    )

NAMES = {p.name: p.read_bytes() for p in sorted(SOURCE.glob("*.txt"))}
PACKAGED = read_manifest()

if {name: hashlib.sha256(data).hexdigest() for name, data in NAMES.items()} != PACKAGED:
    pytest.skip(
        f"the dataset at {SOURCE} does not match charclf/data/names.sha256, so it cannot stand in for the archive",
        allow_module_level=True,
    )


# --- helpers -------------------------------------------------------------------------


def make_zip(members: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def official_layout(names: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """Like the tutorial's data.zip: data/eng-fra.txt beside data/names/<Label>.txt."""
    # eng-fra.txt is small and first, so the middle of the zip is names data (see the corruption test).
    members = {"data/eng-fra.txt": b"Go.\tVa !\nRun!\tCours !\n"}
    members.update({f"data/names/{n}": d for n, d in (NAMES if names is None else names).items()})
    members.update(extra or {})
    return make_zip(members, dirs=("data/", "data/names/"))


def write_manifest(path: Path, files: dict[str, bytes], binary_marker: bool = False) -> Path:
    sep = " *" if binary_marker else "  "
    path.write_text("".join(f"{hashlib.sha256(d).hexdigest()}{sep}{n}\n" for n, d in files.items()))
    return path


def assert_installed(dest: Path, expected: dict[str, bytes]) -> None:
    assert sorted(p.name for p in dest.iterdir()) == sorted(expected)
    for name, data in expected.items():
        assert (dest / name).read_bytes() == data, name


def fetch(dest: Path, url: str, **kwargs) -> list[str]:
    return fetch_dataset(dest, url=url, progress=False, timeout=5, **kwargs)


def flipped(data: bytes) -> bytes:
    """`data` with 64 bytes in its middle inverted."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would route 127.0.0.1 elsewhere; these tests stay local.
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of an HTTP server that lives for this module only."""
    root = tmp_path_factory.mktemp("served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def serve(server: tuple[str, Path], request: pytest.FixtureRequest) -> Callable[[bytes], str]:
    """serve(data) -> URL of a file holding `data`, named after the test so tests never collide."""
    base, root = server
    counter = iter(range(1000))

    def _serve(data: bytes) -> str:
        name = f"{request.node.name}-{next(counter)}.zip".translate(str.maketrans("[]/ ", "____"))
        (root / name).write_bytes(data)
        return f"{base}/{name}"

    return _serve


@pytest.fixture(scope="module")
def good_zip() -> bytes:
    return official_layout()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty parent folder for dest, so leftovers (temp files, partial folders) show up."""
    parent = tmp_path / "parent"
    parent.mkdir()
    return parent
