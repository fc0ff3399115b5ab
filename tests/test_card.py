"""Model cards: written at training time, read from any checkpoint (old ones too), `charclf info`."""

import json
import re
import subprocess
import sys

import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint

FAST = ["--epochs", "1", "--hidden-size", "8", "--no-progress"]


def ok(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_training_writes_a_complete_card(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    card = json.loads(ok("info", "--checkpoint", ckpt, "--json"))
    assert card["checkpoint"] == str(ckpt)
    assert card["charclf_version"] != "unknown" and card["torch_version"] == str(torch.__version__)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", card["date"])
    assert card["model"]["backbone"] == "gru" and card["model"]["hidden_size"] == 8
    assert card["model"]["parameters"] > 0 and card["labels"] == ["English", "Italian", "Japanese"]
    assert len(card["data"]["fingerprint"]) == 16 and card["split"]["seed"] == 0
    assert "random.Random(seed)" in card["split"]["protocol"]
    assert card["metrics"]["test"]["n"] == card["data"]["split_sizes"]["test"]
    # The tiny dataset has too few validation names to fit a temperature on: the card says so.
    assert card["calibration"]["fit_on"] is None and card["calibration"]["temperature"] == 1.0
    assert set(card["calibration"]["test_after"]) == {"ece", "brier", "nll"}
    text = ok("info", "--checkpoint", ckpt)
    assert f"charclf {card['charclf_version']}, torch {card['torch_version']}, saved {card['date']}" in text
    assert "bidirectional GRU, 1 layer(s) of 8" in text and "test ECE" in text


def test_an_old_checkpoint_gets_a_card_with_unknowns(tmp_path):
    payload = torch.load(shipped_checkpoint(), weights_only=True)
    payload["train_config"] = {}
    payload["metrics"] = {}
    payload.pop("calibration")
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    card = json.loads(ok("info", "--checkpoint", old, "--json"))
    assert card["charclf_version"] == card["date"] == card["data"]["fingerprint"] == "unknown"
    assert card["metrics"]["test"] == "unknown" and card["split"]["protocol"] == "unknown"
    assert card["model"]["parameters"] == sum(t.numel() for t in payload["model"].values())
    assert card["calibration"]["temperature"] == 1.0
    text = ok("info", "--checkpoint", old)
    assert "test:        unknown" in text and "raw softmax" in text


def test_the_shipped_model_card_and_the_exported_one_agree(tmp_path):
    pytest = __import__("pytest")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    card = json.loads(ok("info", "--json"))
    assert card["metrics"]["test"]["n"] == 1797 and card["data"]["split_sizes"]["test"] == 1797
    onnx_file = tmp_path / "m.onnx"
    ok("export", onnx_file)
    exported = json.loads(ok("info", "--checkpoint", onnx_file, "--json"))
    assert exported.pop("exported")["format"] == "onnx"
    assert {**exported, "checkpoint": None} == {**card, "checkpoint": None}
    # Read without torch.
    script = (f"import sys; from charclf.cli import main\ntry: main(['info', '--checkpoint', {str(onnx_file)!r}])\n"
              "except SystemExit as e: assert not e.code\nassert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and "exported:    onnx from model.pt" in done.stdout, done.stderr


def test_info_of_a_missing_file_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["info", "--checkpoint", str(tmp_path / "none.pt")])
    assert result.exit_code == 1 and result.output == f"Error: no checkpoint file at {tmp_path / 'none.pt'}\n"
