"""What charclf.data.fetch refuses inside a downloaded archive or a checksum manifest, served by a
real HTTP server on 127.0.0.1 (tests/fetching.py): broken archives, files that differ from the
manifest, members whose paths leave the names folder, and custom or malformed manifests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from charclf.errors import FetchError

from tests.fetching import (
    NAMES,
    PACKAGED,
    _no_proxy,  # noqa: F401 (a fixture)
    assert_installed,
    fetch,
    flipped,
    good_zip,  # noqa: F401 (a fixture)
    make_zip,
    official_layout,
    serve,  # noqa: F401 (a fixture)
    server,  # noqa: F401 (a fixture: serve's)
    work,  # noqa: F401 (a fixture)
    write_manifest,
)

# --- broken archives -----------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(flipped, id="flipped-bytes"),
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
    (dest / "Arabic.txt").write_text("keep me\n")
    names = dict(NAMES, **{"Arabic.txt": NAMES["Arabic.txt"].replace(b"Khoury", b"Khourz", 1)})
    assert names["Arabic.txt"] != NAMES["Arabic.txt"]

    # Even with force, a bad archive must not replace what is there.
    with pytest.raises(FetchError) as err:
        fetch(dest, serve(official_layout(names)), force=True)
    message = str(err.value)
    assert "checksum mismatch for Arabic.txt" in message
    assert f"expected {PACKAGED['Arabic.txt'][:8]}..." in message
    assert "--manifest" in message and "CHARCLF_DATA" in message and "\n" not in message
    assert [p.name for p in dest.iterdir()] == ["Arabic.txt"]
    assert (dest / "Arabic.txt").read_text() == "keep me\n"
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
