"""The pretrained model inside the package answers with no dataset and no training."""

import json

import pytest
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.files.locations import shipped_checkpoint

UNAMBIGUOUS = {"Nakamura": "Japanese", "Ivanov": "Russian", "Nguyen": "Vietnamese", "Schmidt": "German",
               "O'Brien": "Irish", "Ślusàrski": "Polish", "Satoshi": "Japanese"}


def test_the_package_ships_a_small_model():
    path = shipped_checkpoint()
    assert path is not None and path.stat().st_size < 5_000_000
    checkpoint = charclf.load(path, backend="torch").checkpoint
    assert checkpoint.metrics["test"]["accuracy"] > 0.8 and checkpoint.metrics["test"]["n"] == 1797
    # The default model, purely recurrent: letter embedding, GRU, linear head and the spelling
    # heads on the GRU's states; no n-gram table.
    assert checkpoint.model_config.arch == "gru" and checkpoint.model_config.spelling_weight > 0
    assert {key.split(".")[0] for key in checkpoint.state_dict} == {"embed", "rnn", "head", "spelling"}



def test_the_shipped_model_is_the_best_recipes_split_seed_0_student_with_the_extra_names():
    """--preset best (charclf.training.recipes): one default-shaped network that learnt from five,
    with the chosen mix of extra names (docs/training-names.md)."""
    from charclf.config import ModelConfig
    from charclf.training.recipes import BEST_STUDENT, BEST_TEACHERS

    checkpoint = charclf.load(shipped_checkpoint(), backend="torch").checkpoint
    recipe, train = checkpoint.metrics["recipe"], checkpoint.train_config
    assert recipe["name"] == "best" and recipe["teachers"]["members"] == BEST_TEACHERS
    assert train["seed"] == 0 and all(train[key] == value for key, value in BEST_STUDENT.items())
    assert checkpoint.metrics["refit"]["trained_on"] == "train+val"
    default = ModelConfig(arch="gru", n_letters=checkpoint.model_config.n_letters, n_classes=18)
    assert checkpoint.model_config == default  # as fast to predict as any default network
    # The mix chosen on validation and the off-distribution set: mimesis, at most 500 per label, weight 0.3.
    assert (train["extra_names"], train["extra_weight"], train["extra_cap"]) == ("mimesis", 0.3, 500)
    assert checkpoint.metrics["offdist"]["n"] > 1000 and checkpoint.metrics["offdist"]["accuracy"] > 0.6
    # Its card records the teachers' seconds and the student's (wall-clock: they depend on the machine's load).
    assert recipe["teachers"]["train_seconds"] > 0 and checkpoint.metrics["train_seconds"] > 0


def test_predict_works_out_of_the_box(isolated_home, monkeypatch, tmp_path):
    monkeypatch.delenv("CHARCLF_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data/names either
    assert not (isolated_home / "model.pt").exists()
    [p] = charclf.load(device="cpu").predict(["Nakamura"], k=1)
    assert p.label == "Japanese"
    result = CliRunner().invoke(main, ["predict", *UNAMBIGUOUS, "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["name"]: r["predictions"][0]["label"] for r in rows} == UNAMBIGUOUS


def test_the_shipped_model_is_calibrated_on_held_out_names():
    calibration = charclf.load(shipped_checkpoint(), device="cpu").checkpoint.calibration
    assert calibration["fit_on"] == "val" and calibration["temperature"] != 1.0
    metrics = charclf.load(shipped_checkpoint(), device="cpu").checkpoint.metrics["calibration"]
    # The probabilities must be honest on held-out names, and the temperature must not hurt.
    assert metrics["test_after"]["ece"] <= 0.05
    assert metrics["test_after"]["ece"] <= metrics["test_before"]["ece"] + 0.005
    assert metrics["test_after"]["nll"] <= metrics["test_before"]["nll"] + 0.005


def test_the_shipped_model_evaluates_as_recorded(real_data):
    result = CliRunner().invoke(main, ["evaluate", "--data", str(real_data), "--json", "--min-confidence", "0.5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    recorded = charclf.load(shipped_checkpoint(), device="cpu").checkpoint.metrics
    assert report["accuracy"] == recorded["test"]["accuracy"]  # calibration changed no prediction
    # Equal up to float rounding: names may be batched differently than at training time.
    assert report["calibration"]["after"]["ece"] == \
        pytest.approx(recorded["calibration"]["test_after"]["ece"], abs=1e-6)
    assert report["selective"]["selective_accuracy"] > report["accuracy"]
