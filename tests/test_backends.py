"""The two backends: ONNX Runtime on a model's .onnx export (the default, no torch needed) and torch
on its .pt checkpoint give the same answers; training writes both; the shipped model comes as both;
a stale export is never used; files saved by earlier releases still load."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.data.dataset import load_dataset, split_dataset
from charclf.files.locations import shipped_checkpoint

pytest.importorskip("onnx")

FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED_ONNX = shipped_checkpoint().with_suffix(".onnx")


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def ok(*args, env=None) -> str:
    result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A small GRU trained through the CLI: its .pt and, beside it, its .onnx."""
    from conftest import write_made_up_languages

    folder = tmp_path_factory.mktemp("backends")
    data = write_made_up_languages(folder / "names", per_label=60, seed=1, longest=9)
    out = folder / "gru.pt"
    CliRunner().invoke(main, ["train", "--data", str(data), "--hidden-size", "16", "--epochs", "3", "--no-refit",
                              "--no-progress", "--out", str(out)], catch_exceptions=False)
    return out


def test_the_shipped_onnx_is_the_export_of_the_shipped_pt():
    light, full = charclf.load(), charclf.load(backend="torch")
    assert (light.backend.name, light.path) == ("onnx", SHIPPED_ONNX)
    assert light.backend.source == sha256(shipped_checkpoint())  # not a stale export
    assert light.checkpoint.as_payload() == full.checkpoint.description.as_payload()
    assert light.model_id == full.model_id == sha256(shipped_checkpoint())[:16]


def test_the_shipped_model_answers_the_same_on_both_backends_on_the_whole_test_split(real_data):
    light, full = charclf.load(), charclf.load(backend="torch")
    names = [name for name, _ in split_dataset(load_dataset(real_data), seed=0)["test"]]
    assert len(names) > 1700
    p, q = light.probabilities(names), full.probabilities(names)
    assert (p.argmax(1) == q.argmax(1)).all() and abs(p - q).max() < 1e-5
    for a, b in zip(light.predict(names[:300], k=18), full.predict(names[:300], k=18)):
        assert a.label == b.label and [x for x, _ in a.top] == [x for x, _ in b.top]


def test_training_writes_the_onnx_beside_the_pt_and_prediction_uses_it(trained):
    onnx_file = trained.with_suffix(".onnx")
    assert onnx_file.is_file() and charclf.load(onnx_file).backend.source == sha256(trained)
    assert charclf.load(trained).backend.name == "onnx"
    assert charclf.load(trained, backend="torch").backend.name == "torch"
    names = ["Aeiou", "Bortkaz", "Lemmys", "Haze", "Иванов", "..."]
    light = ok("predict", *names, "--json", "-k", "3", "--checkpoint", trained)
    full = ok("predict", *names, "--json", "-k", "3", "--checkpoint", trained, "--backend", "torch")
    for a, b in zip(map(json.loads, light.splitlines()), map(json.loads, full.splitlines())):
        assert (a["label"], a["model"]) == (b["label"], b["model"])
        for x, y in zip(a["predictions"], b["predictions"]):
            assert x["label"] == y["label"] and abs(x["probability"] - y["probability"]) < 1e-5


def test_a_stale_onnx_is_never_used(trained, tmp_path):
    pt, onnx_file = tmp_path / "m.pt", tmp_path / "m.onnx"
    shutil.copy(trained, pt)
    shutil.copy(SHIPPED_ONNX, onnx_file)  # another model's export
    assert charclf.load(pt).backend.name == "torch"
    result = run("predict", "Haze", "--checkpoint", pt, "--backend", "onnx")
    assert result.exit_code == 2 and f"{onnx_file} is not the export of {pt} as it is now" in result.output
    onnx_file.unlink()
    result = run("predict", "Haze", "--checkpoint", pt, "--backend", "onnx")
    assert result.exit_code == 2 and "charclf export" in result.output
    result = run("predict", "Haze", "--checkpoint", SHIPPED_ONNX, "--backend", "torch")
    assert result.exit_code == 2 and "the torch backend needs the .pt checkpoint" in result.output


@pytest.mark.parametrize("command", [["evaluate", "--json"], ["confusion"], ["calibration", "--json"]])
def test_scores_are_the_same_on_both_backends(trained, command):
    data = Path(charclf.load(trained).checkpoint.train_config["data_dir"])
    light = ok(*command, "--checkpoint", trained, "--data", data)
    full = ok(*command, "--checkpoint", trained, "--data", data, "--backend", "torch")
    if "--json" not in command:
        assert light == full
        return
    light, full = json.loads(light), json.loads(full)
    assert (light.pop("checkpoint"), full.pop("checkpoint")) == (str(trained.with_suffix(".onnx")), str(trained))
    assert close(light, full)


def close(a, b, tolerance: float = 1e-5) -> bool:
    """The same JSON, numbers within `tolerance` (of each other, or relatively for large ones)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= tolerance * max(1.0, abs(a))
    return a == b


def test_explain_is_the_same_on_both_backends():
    light = json.loads(ok("explain", "Papadopoulos", "--json"))
    full = json.loads(ok("explain", "Papadopoulos", "--json", "--backend", "torch"))
    assert light["tracked"] == full["tracked"]
    assert light["turning_points"][0]["letter"] == full["turning_points"][0]["letter"]
    for a, b in zip(light["letters"], full["letters"]):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        assert max(abs(a["probabilities"][x] - b["probabilities"][x]) for x in a["probabilities"]) < 1e-5


def test_without_torch_every_prediction_command_works(trained, tmp_path):
    """In an interpreter where torch cannot be imported, as in `pip install charclf`."""
    table = tmp_path / "people.csv"
    table.write_text("surname\nHaze\nBortkaz\n", encoding="utf-8")
    data = charclf.load(trained).checkpoint.train_config["data_dir"]
    commands = [["predict", "Jones"], ["predict", "Haze", "--checkpoint", str(trained)],
                ["predict", "--csv", str(table), "--column", "surname", "--checkpoint", str(trained)],
                ["explain", "Jones", "--json"], ["info"], ["evaluate", "--checkpoint", str(trained), "--data", data],
                ["confusion", "--checkpoint", str(trained), "--data", data]]
    script = ("import sys, json; sys.modules['torch'] = None\n"
              "from charclf.cli import main\n"
              "try:\n    main(json.loads(sys.argv[1]))\nexcept SystemExit as e:\n    sys.exit(e.code)\n")
    for command in commands:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(command)], capture_output=True, text=True)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)


def test_files_saved_by_release_0_1_0_still_load_and_answer_the_same():
    folder = FIXTURES / "release-0.1.0"  # charclf train ... --hidden-size 16 --embedding-dim 8 on made-up names
    expected = [json.loads(line) for line in (folder / "expected.jsonl").read_text().splitlines()]
    names = [row["name"] for row in expected]
    for backend in ("onnx", "torch"):
        got = charclf.load(folder / "model.pt", backend=backend).predict(names, k=3)
        for p, want in zip(got, expected):
            assert p.label == want["label"] and p.model == want["model"]
            assert np.allclose([x for _, x in p.top], [x["probability"] for x in want["predictions"]], atol=1e-5)


def test_a_file_from_a_later_format_is_refused_naming_the_version(tmp_path):
    import onnx
    import torch

    payload = torch.load(FIXTURES / "release-0.1.0" / "model.pt", weights_only=True)
    torch.save({**payload, "format": 3}, tmp_path / "later.pt")
    result = run("predict", "Haze", "--checkpoint", tmp_path / "later.pt", "--backend", "torch")
    assert result.exit_code == 1 and "model format 3 is not supported (this charclf reads format 2" in result.output
    model = onnx.load(str(FIXTURES / "release-0.1.0" / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key == "charclf.format":
            prop.value = "2"
    onnx.save(model, str(tmp_path / "later.onnx"))
    result = run("predict", "Haze", "--checkpoint", tmp_path / "later.onnx")
    assert result.exit_code == 1
    assert "metadata format '2' is not supported (this charclf reads format 1" in result.output


def test_a_names_numbers_do_not_depend_on_the_names_beside_it():
    clf = charclf.load()
    names = ["Jones", "Rossi", "Nakamura", "Li", "Kowalski", "Smith", "Dubois", "Jones"]
    together = clf.logits(names)
    for i, name in enumerate(names):
        assert (clf.logits([name])[0] == together[i]).all()  # to the last bit
    assert (clf.logits(names[3:6]) == together[3:6]).all()
