from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_manifest_is_the_repositorys():
    assert (ROOT / "charclf" / "data" / "names.sha256").read_text() == (ROOT / "data" / "SHA256SUMS").read_text()
