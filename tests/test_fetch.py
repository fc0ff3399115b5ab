"""charclf.data.fetch against a real HTTP server on 127.0.0.1 serving zips built from the real dataset.

Nothing is mocked: the archives are real zips, the downloads go through urllib
to a local ThreadingHTTPServer that lives only as long as this module's tests.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest

from charclf.data.fetch import OFFICIAL_URL, fetch_dataset, read_manifest
from charclf.errors import FetchError

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


# --- success -------------------------------------------------------------------------


def test_good_archive_installs_all_files_byte_identical(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    installed = fetch(dest, serve(good_zip))
    assert installed == sorted(NAMES) and len(installed) == 18
    assert_installed(dest, NAMES)
    assert [p.name for p in work.iterdir()] == ["names"]  # no temp files, eng-fra.txt ignored


def test_missing_parent_folders_are_created(serve, good_zip, work: Path) -> None:
    dest = work / "a" / "b" / "names"
    fetch(dest, serve(good_zip))
    assert_installed(dest, NAMES)
    assert [p.name for p in dest.parent.iterdir()] == ["names"]


def test_existing_empty_dest_is_filled_without_force(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    dest.mkdir()
    fetch(dest, serve(good_zip))
    assert_installed(dest, NAMES)


def test_packaged_manifest_lists_the_18_languages() -> None:
    assert len(PACKAGED) == 18 and "Arabic.txt" in PACKAGED
    assert OFFICIAL_URL == "https://download.pytorch.org/tutorial/data.zip"


# --- broken archives -----------------------------------------------------------------


def _flipped(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_flipped, id="flipped-bytes"),
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(lambda d: b"<html><body>Service unavailable</body></html>", id="not-a-zip"),
        pytest.param(lambda d: b"", id="empty"),
    ],
)
def test_corrupt_archive_fails_and_leaves_nothing(serve, good_zip, work: Path, damage) -> None:
    dest = work / "names"
    with pytest.raises(FetchError, match="not a valid zip archive") as err:
        fetch(dest, serve(damage(good_zip)))
    assert "\n" not in str(err.value) and "nothing was written" in str(err.value)
    assert not dest.exists()
    assert list(work.iterdir()) == []


def test_altered_file_fails_checksum_and_leaves_dest_untouched(serve, work: Path) -> None:
    dest = work / "names"
    dest.mkdir()
    (dest / "Mine.txt").write_text("keep me\n")
    names = dict(NAMES, **{"Arabic.txt": NAMES["Arabic.txt"].replace(b"Khoury", b"Khourz", 1)})
    assert names["Arabic.txt"] != NAMES["Arabic.txt"]

    # Even with force, a bad archive must not replace what is there.
    with pytest.raises(FetchError) as err:
        fetch(dest, serve(official_layout(names)), force=True)
    message = str(err.value)
    assert "checksum mismatch for Arabic.txt" in message
    assert f"expected {PACKAGED['Arabic.txt'][:8]}..." in message
    assert "--manifest" in message and "CHARCLF_DATA" in message and "\n" not in message
    assert [p.name for p in dest.iterdir()] == ["Mine.txt"]
    assert (dest / "Mine.txt").read_text() == "keep me\n"
    assert [p.name for p in work.iterdir()] == ["names"]


def test_missing_file_fails(serve, work: Path) -> None:
    dest = work / "names"
    names = {n: d for n, d in NAMES.items() if n != "Korean.txt"}
    with pytest.raises(FetchError, match=r"Korean\.txt is missing"):
        fetch(dest, serve(official_layout(names)))
    assert list(work.iterdir()) == []


def test_archive_without_names_folder_fails(serve, work: Path) -> None:
    url = serve(make_zip({"data/eng-fra.txt": b"Go.\tVa !\n", "Arabic.txt": NAMES["Arabic.txt"]}))
    with pytest.raises(FetchError, match="missing from the archive"):
        fetch(work / "names", url)
    assert list(work.iterdir()) == []


def test_extra_file_not_in_manifest_fails(serve, work: Path) -> None:
    url = serve(official_layout(extra={"data/names/Klingon.txt": b"Worf\n"}))
    with pytest.raises(FetchError, match="Klingon.txt"):
        fetch(work / "names", url)
    assert list(work.iterdir()) == []


def test_same_file_twice_fails(serve, work: Path) -> None:
    url = serve(official_layout(extra={"names/Arabic.txt": NAMES["Arabic.txt"]}))
    with pytest.raises(FetchError, match="twice"):
        fetch(work / "names", url)
    assert list(work.iterdir()) == []


# --- an existing destination ---------------------------------------------------------


def test_existing_dest_needs_force_then_is_replaced(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    dest.mkdir()
    (dest / "Old.txt").write_text("old\n")
    url = serve(good_zip)

    with pytest.raises(FetchError, match="--force"):
        fetch(dest, url)
    assert [p.name for p in dest.iterdir()] == ["Old.txt"]
    assert list(work.iterdir()) == [dest]

    assert fetch(dest, url, force=True) == sorted(NAMES)
    assert_installed(dest, NAMES)  # Old.txt is gone: replaced, not merged
    assert list(work.iterdir()) == [dest]  # the old folder moved aside is deleted


def test_dest_that_is_a_file_fails(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    dest.write_text("not a folder\n")
    with pytest.raises(FetchError, match="not a folder"):
        fetch(dest, serve(good_zip), force=True)
    assert dest.read_text() == "not a folder\n"


# --- network failures ----------------------------------------------------------------


def test_http_404_fails(server, work: Path) -> None:
    base, _ = server
    url = f"{base}/no-such-archive.zip"
    with pytest.raises(FetchError, match=r"could not download .*no-such-archive\.zip: HTTP Error 404") as err:
        fetch(work / "names", url)
    assert "Check the network" in str(err.value) and "\n" not in str(err.value)
    assert list(work.iterdir()) == []


def test_connection_refused_fails(work: Path) -> None:
    # A bound socket that never listens: connecting to it is refused, and no other
    # process can take the port while the test runs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/data.zip"
        with pytest.raises(FetchError, match="could not download .*refused"):
            fetch(work / "names", url)
    assert list(work.iterdir()) == []


def test_server_that_never_answers_times_out(work: Path) -> None:
    # The kernel accepts the connection into the backlog, but nobody ever answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/data.zip"
        with pytest.raises(FetchError, match="could not download .*timed out"):
            fetch_dataset(work / "names", url=url, progress=False, timeout=0.5)
    assert list(work.iterdir()) == []


def test_download_cut_short_fails(good_zip, work: Path) -> None:
    # A server that promises the whole archive, sends half, and hangs up.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        sock.settimeout(5)

        def answer() -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(good_zip)}\r\nConnection: close\r\n\r\n"
                conn.sendall(head.encode() + good_zip[: len(good_zip) // 2])

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/data.zip"
        with pytest.raises(FetchError, match=r"could not download .*closed after \d+ of \d+ bytes"):
            fetch(work / "names", url)
        thread.join(timeout=5)
    assert list(work.iterdir()) == []


def test_malformed_url_fails(work: Path) -> None:
    with pytest.raises(FetchError, match="could not download"):
        fetch(work / "names", "not-a-url")
    assert list(work.iterdir()) == []


# --- zip slip ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        "data/names/../../../../evil.txt",
        "data/names/..\\..\\..\\..\\evil.txt",
        "../../names/../evil.txt",
    ],
)
def test_member_escaping_names_folder_is_ignored(serve, tmp_path: Path, member: str) -> None:
    dest = tmp_path / "parent" / "a" / "names"
    fetch(dest, serve(official_layout(extra={member: b"pwned\n"})))
    assert_installed(dest, NAMES)
    assert list(tmp_path.rglob("evil.txt")) == []


@pytest.mark.parametrize(
    "member",
    [
        "../../names/evil.txt",
        "/tmp/charclf-zip-slip/names/evil.txt",
        "data/names/.evil.txt",
        "data/names/evil.sh",
        "data/names/evil",
    ],
)
def test_member_with_a_bad_path_is_never_written(serve, tmp_path: Path, member: str) -> None:
    absolute = Path("/tmp/charclf-zip-slip/names/evil.txt")
    existed = absolute.exists()
    dest = tmp_path / "parent" / "a" / "names"
    zipped = official_layout(extra={member: b"pwned\n"})
    assert member in zipfile.ZipFile(io.BytesIO(zipped)).namelist()  # zipfile kept the path as is

    with pytest.raises(FetchError):
        fetch(dest, serve(zipped))
    assert not dest.exists()
    assert list(tmp_path.rglob("*evil*")) == []
    assert absolute.exists() == existed


# --- custom manifests ----------------------------------------------------------------


def test_custom_manifest(serve, work: Path, tmp_path: Path) -> None:
    # A smaller, different dataset, names/ at the top of the zip, sha256sum's binary marker.
    files = {"Elvish.txt": b"Legolas\nGaladriel\n", "Dwarvish.txt": b"Gimli\n", "Hobbit.txt": b"Frodo\nSam\n"}
    manifest = write_manifest(tmp_path / "mine.sha256", files, binary_marker=True)
    url = serve(make_zip({f"names/{n}": d for n, d in files.items()}))

    assert fetch(work / "names", url, manifest=manifest) == sorted(files)
    assert_installed(work / "names", files)

    # The packaged manifest does not know these files.
    with pytest.raises(FetchError, match="missing from the archive"):
        fetch(work / "other", url)


def test_custom_manifest_rejects_the_official_files(serve, good_zip, work: Path, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "mine.sha256", dict(NAMES, **{"Arabic.txt": b"something else\n"}))
    with pytest.raises(FetchError, match="checksum mismatch for Arabic.txt"):
        fetch(work / "names", serve(good_zip), manifest=manifest)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not a checksum line\n", id="garbage"),
        pytest.param("abc123  Arabic.txt\n", id="short-hash"),
        pytest.param(f"{'0' * 64}  ../Arabic.txt\n", id="path"),
        pytest.param(f"{'0' * 64}  Arabic.txt\n{'1' * 64}  Arabic.txt\n", id="duplicate"),
    ],
)
def test_malformed_manifest_fails_before_downloading(tmp_path: Path, work: Path, text: str) -> None:
    manifest = tmp_path / "bad.sha256"
    manifest.write_text(text)
    # The URL is never contacted: nothing listens on port 9 of 127.0.0.1 anyway.
    with pytest.raises(FetchError, match="manifest"):
        fetch(work / "names", "http://127.0.0.1:9/data.zip", manifest=manifest)
    assert list(work.iterdir()) == []


def test_unreadable_manifest_fails(tmp_path: Path, work: Path) -> None:
    with pytest.raises(FetchError, match="cannot read checksum manifest"):
        fetch(work / "names", "http://127.0.0.1:9/data.zip", manifest=tmp_path / "absent.sha256")
    (tmp_path / "binary.sha256").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FetchError, match="cannot read checksum manifest"):
        fetch(work / "names", "http://127.0.0.1:9/data.zip", manifest=tmp_path / "binary.sha256")


def test_progress_bar_goes_to_stderr(serve, good_zip, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fetch_dataset(work / "names", url=serve(good_zip), progress=True, timeout=5)
    out, err = capsys.readouterr()
    assert out == ""
    assert "B" in err  # tqdm's byte counter


# --- through the CLI -----------------------------------------------------------------


def test_cli_data_fetch(serve, good_zip, work: Path) -> None:
    from click.testing import CliRunner

    from charclf.cli import main

    dest = work / "names"
    result = CliRunner().invoke(main, ["data", "fetch", "--url", serve(good_zip), "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert_installed(dest, NAMES)


def test_cli_data_fetch_corrupt_archive(serve, good_zip, work: Path) -> None:
    from click.testing import CliRunner

    from charclf.cli import main

    dest = work / "names"
    result = CliRunner().invoke(main, ["data", "fetch", "--url", serve(_flipped(good_zip)), "--dest", str(dest)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "not a valid zip archive" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert list(work.iterdir()) == []
