import os
from pathlib import Path

import pytest

# Three small languages, eight names each: enough for train/val/test splits of a few names.
TINY = {
    "English": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"],
    "Italian": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"],
    "Japanese": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"],
}

REAL_DATA = Path(os.environ.get("CHARCLF_DATA") or Path(__file__).resolve().parents[1] / "data/names")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Each test gets its own default-model folder, so none sees another's `charclf train`."""
    home = tmp_path / "charclf-home"
    monkeypatch.setenv("CHARCLF_HOME", str(home))
    return home


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    folder = tmp_path / "names"
    folder.mkdir()
    for label, names in TINY.items():
        (folder / f"{label}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the real dataset is missing at {REAL_DATA} (set CHARCLF_DATA)")
        pytest.skip(f"the real dataset is not at {REAL_DATA} (set CHARCLF_DATA)")
    return REAL_DATA
