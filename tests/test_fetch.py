"""charclf.data.fetch against a real HTTP server on 127.0.0.1 serving zips built from the real dataset
(tests/fetching.py): what it installs, an existing destination, network failures, the progress
bar and the CLI. What it refuses inside an archive or a manifest: tests/test_fetch_checks.py."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from charclf.data.fetch import OFFICIAL_URL, fetch_dataset
from charclf.errors import FetchError

from tests.fetching import (
    NAMES,
    PACKAGED,
    _no_proxy,  # noqa: F401 (a fixture)
    assert_installed,
    fetch,
    flipped,
    good_zip,  # noqa: F401 (a fixture)
    serve,  # noqa: F401 (a fixture)
    server,  # noqa: F401 (a fixture)
    work,  # noqa: F401 (a fixture)
)

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


# --- an existing destination ---------------------------------------------------------


def test_existing_dest_needs_force_then_is_replaced(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    url = serve(good_zip)
    fetch(dest, url)
    (dest / "Arabic.txt").write_text("old\n")

    with pytest.raises(FetchError, match="already holds the names dataset; pass --force"):
        fetch(dest, url)
    assert (dest / "Arabic.txt").read_text() == "old\n"
    assert list(work.iterdir()) == [dest]

    assert fetch(dest, url, force=True) == sorted(NAMES)
    assert_installed(dest, NAMES)  # replaced, not merged
    assert list(work.iterdir()) == [dest]  # the old folder moved aside is deleted


def test_force_never_deletes_what_charclf_did_not_fetch(serve, good_zip, work: Path) -> None:
    dest = work / "names"
    fetch(dest, serve(good_zip))
    (dest / "notes.md").write_text("mine\n")
    (dest / "sub").mkdir()
    (dest / "sub" / "keep.txt").write_text("mine too\n")
    for force in (False, True):
        with pytest.raises(FetchError) as err:
            fetch(dest, serve(good_zip), force=force)
        assert "'notes.md' and 1 more, which charclf did not fetch" in str(err.value)
        assert "pass --force" not in str(err.value)
    assert (dest / "notes.md").read_text() == "mine\n" and (dest / "sub" / "keep.txt").read_text() == "mine too\n"
    assert sorted(p.name for p in dest.iterdir()) == sorted([*NAMES, "notes.md", "sub"])


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
    result = CliRunner().invoke(main, ["data", "fetch", "--url", serve(flipped(good_zip)), "--dest", str(dest)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "not a valid zip archive" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert list(work.iterdir()) == []
