import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

# Three small languages, eight names each: enough for train/val/test splits of a few names.
TINY = {
    "English": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"],
    "Italian": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"],
    "Japanese": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"],
}

REAL_DATA = Path(os.environ.get("CHARCLF_DATA") or Path(__file__).resolve().parents[1] / "data/names")

# Nothing of the user's is read: the default model the user trained (run.sh puts one in their
# home) and their settings. Module fixtures run before `isolated_home`, so this holds for them too.
os.environ["CHARCLF_HOME"] = tempfile.mkdtemp(prefix="charclf-tests-home-")
atexit.register(shutil.rmtree, os.environ["CHARCLF_HOME"], ignore_errors=True)
for setting in ("CHARCLF_THREADS", "CHARCLF_PRECISION"):
    os.environ.pop(setting, None)


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


def write_made_up_languages(folder: Path, per_label: int, seed: int, longest: int) -> Path:
    """Three made-up 'languages' (Aish, Bork, Clem), each up to `per_label` distinct names of 3 to
    `longest` letters drawn from its own letters, one <Label>.txt each in `folder` (created)."""
    import random

    rng = random.Random(seed)
    folder.mkdir()
    for label, letters in {"Aish": "aeiou", "Bork": "bkrtz", "Clem": "lmnsy"}.items():
        names = {"".join(rng.choice(letters + "aeh") for _ in range(rng.randint(3, longest))).title()
                 for _ in range(per_label)}
        (folder / f"{label}.txt").write_text("\n".join(sorted(names)) + "\n")
    return folder


def wait_for_saved_epoch(process, checkpoint: Path, epoch: int, timeout: float) -> None:
    """Block until the run `process` trains has saved the state of `epoch` beside `checkpoint`
    (it must not end or take longer than `timeout` seconds first)."""
    import torch

    from charclf.training.train import state_path

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        try:
            if torch.load(state_path(checkpoint), weights_only=True)["epoch"] >= epoch:
                return
        except Exception:
            time.sleep(0.05)  # not written yet, or being replaced


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory) -> Path:
    """The shipped model exported by `charclf export` to a .onnx file."""
    pytest.importorskip("onnx", reason="exporting the model to .onnx needs the export extra")
    pytest.importorskip("onnxruntime", reason="reading a .onnx model needs the onnx extra")
    from tests import engines

    return engines.export_onnx(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="session")
def engine_table(tmp_path_factory, onnx_model):
    """The Spark and Dask tests' table (tests/engines.py): the shipped model as .onnx, 100,000 rows
    of awkward names, and `charclf predict --csv --min-confidence 0.5`'s answers to them."""
    from tests import engines

    folder, model = tmp_path_factory.mktemp("engines"), onnx_model
    rows = engines.names_table(100_000)
    table = engines.write_csv(folder / "names.csv", rows)
    columns, answers = engines.cli_answers(table, model, folder / "answers.csv", "--min-confidence", "0.5")
    return {"model": model, "rows": rows, "csv": table, "columns": columns, "answers": answers}
