"""Temperature scaling, calibration error, abstention: the maths, then the commands."""

import json

import pytest
import torch

from charclf.files.checkpoint import load_checkpoint
from charclf.predict.calibration import brier_score, coverage_curve, fit_temperature, reliability, selective

from tests.test_cli import FAST, json_lines, ok, run


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20_000, 6, generator=generator)
    for true_t in (0.5, 2.0):
        targets = torch.multinomial(torch.softmax(logits / true_t, dim=1), 1, generator=generator).squeeze(1)
        assert fit_temperature(logits, targets) == pytest.approx(true_t, rel=0.05)


def test_ece_of_a_hand_made_example():
    # Two names at confidence 0.9 (one right), two at 0.6 (both right): bins 13 and 8 of 15.
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    targets = torch.tensor([0, 1, 0, 1])
    r = reliability(probs, targets, bins=15)
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4
    assert r["ece"] == pytest.approx(0.4)
    filled = [b for b in r["bins"] if b["count"]]
    assert [(b["count"], b["accuracy"]) for b in filled] == [(2, 1.0), (2, 0.5)]
    assert sum(b["count"] for b in r["bins"]) == 4 and len(r["bins"]) == 15


def test_brier_score():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert brier_score(probs, torch.tensor([0, 0])) == pytest.approx((0 + 0.5) / 2)


def test_selective_accuracy_and_coverage():
    confidence = torch.tensor([0.9, 0.8, 0.4, 0.3])
    correct = torch.tensor([True, False, True, False])
    assert selective(confidence, correct, 0.5) == {
        "min_confidence": 0.5, "coverage": 0.5, "answered": 2, "abstained": 2, "selective_accuracy": 0.5}
    assert selective(confidence, correct, 0.95)["selective_accuracy"] is None  # answered none
    curve = coverage_curve(confidence, correct)
    assert curve[0]["coverage"] == 1 and curve[-1]["coverage"] == 0
    assert [c["coverage"] for c in curve] == sorted((c["coverage"] for c in curve), reverse=True)


@pytest.fixture
def model(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    return ckpt


def test_training_stores_a_temperature_fitted_on_validation(tmp_path):
    # 3 labels of 150 made-up names: a validation split of about 45, enough to fit on.
    folder = tmp_path / "names"
    folder.mkdir()
    for label, ending in (("A", "son"), ("B", "ini"), ("C", "moto")):
        stems = [f"{a}{b}{c}" for a in "BDKMRT" for b in "aeiou" for c in "lnrs"][:150]
        (folder / f"{label}.txt").write_text("".join(f"{stem}{ending}\n" for stem in stems))
    result = ok("train", "--data", folder, *FAST, "--out", tmp_path / "m.pt")
    assert "validation split has only" not in result.stderr
    ck = load_checkpoint(tmp_path / "m.pt")
    assert ck.calibration["fit_on"] == "val" and ck.calibration["n"] >= 30 and ck.temperature != 1.0
    assert ck.metrics["calibration"]["test_after"]["ece"] >= 0


def test_too_few_validation_names_keep_the_raw_softmax(tiny_data, tmp_path):
    """A validation split of a few names: a warning, and no temperature fitted (it would be 0.01)."""
    result = ok("train", "--data", tiny_data, *FAST, "--out", tmp_path / "m.pt")
    ck = load_checkpoint(tmp_path / "m.pt")
    n = ck.train_config["split_sizes"]["val"]
    assert 0 < n < 30
    assert (f"warning: the validation split has only {n} name(s): too few to choose the best epoch reliably or "
            "to fit a calibration temperature (at least 30)") in result.stderr
    assert ck.temperature == 1.0 and ck.calibration["fit_on"] is None and ck.calibration["n"] == n
    out = ok("calibration", "--checkpoint", tmp_path / "m.pt", "--data", tiny_data, "--split", "val").stdout
    assert "temperature 1.0000 (none stored: raw softmax)" in out
    # What fitting on so few would do: three names answered right push T to its bound.
    logits = torch.tensor([[0.5, 0.0], [0.3, 0.0], [0.4, 0.0]])
    targets = torch.tensor([0, 0, 0])
    assert fit_temperature(logits, targets, min_names=1) == pytest.approx(0.01, rel=1e-2)
    assert fit_temperature(logits, targets) == 1.0


def test_predict_divides_the_logits_by_the_temperature(model):
    import charclf

    clf = charclf.load(model, device="cpu")
    logits = clf.logits(["Rossi"])
    [p] = clf.predict(["Rossi"], k=1)
    from charclf.predict.calibration import softmax

    assert p.top[0][1] == pytest.approx(float(softmax(logits, clf.temperature).max()), abs=1e-6)


def test_calibration_command_reports_and_plots(model, tiny_data, tmp_path):
    png = tmp_path / "reliability.png"
    out = ok("calibration", "--checkpoint", model, "--data", tiny_data, "--plot", "--out", png, "--no-show").stdout
    assert "raw softmax" in out and "calibrated" in out and "temperature" in out
    assert f"saved the reliability diagram to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = ok("calibration", "--checkpoint", model, "--data", tiny_data, "--json", "--bins", "10", "--plot",
                "--out", png, "--no-show")
    report = json.loads(result.stdout)  # the note about the plot goes to stderr, keeping stdout JSON
    assert f"saved the reliability diagram to {png}" in result.stderr
    assert report["temperature"] == pytest.approx(load_checkpoint(model).temperature)
    assert len(report["after"]["bins"]) == 10 and {"ece", "brier", "nll"} <= set(report["before"])


def test_evaluate_reports_calibration_and_selective_accuracy(model, tiny_data, tmp_path):
    png = tmp_path / "coverage.png"
    out = ok("evaluate", "--checkpoint", model, "--data", tiny_data, "--min-confidence", "0.4",
             "--plot", "--out", png, "--no-show").stdout
    assert "calibration: temperature" in out and "ECE (15 bins)" in out
    assert "min confidence 0.4: answered" in out and "coverage" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(ok("evaluate", "--checkpoint", model, "--data", tiny_data, "--json",
                           "--min-confidence", "0", "--plot", "--out", png, "--no-show").stdout)
    assert report["selective"]["coverage"] == 1 and report["selective"]["abstained"] == 0
    assert report["selective"]["selective_accuracy"] == pytest.approx(report["accuracy"])
    plain = json.loads(ok("evaluate", "--checkpoint", model, "--data", tiny_data, "--json").stdout)
    assert "selective" not in plain and "calibration" in plain


def test_predict_abstains_below_the_minimum_confidence(model):
    rows = json_lines(ok("predict", "Rossi", "Tanaka", "--json", "--min-confidence", "1", "--checkpoint", model).stdout)
    for row in rows:
        assert row["abstained"] and row["label"] == "unknown"
        assert row["reason"].startswith("top probability") and "below the minimum confidence 1" in row["reason"]
        assert row["best_guess"] == row["predictions"][0]
    rows = json_lines(ok("predict", "Rossi", "--json", "--min-confidence", "0", "--checkpoint", model).stdout)
    assert not rows[0]["abstained"] and rows[0]["label"] == rows[0]["predictions"][0]["label"]
    assert "reason" not in rows[0] and "best_guess" not in rows[0]
    text = ok("predict", "Rossi", "--min-confidence", "1", "--checkpoint", model).stdout
    assert text.startswith("Rossi  unknown: top probability") and "(best guess " in text


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_min_confidence_outside_0_1_is_a_usage_error(model, value):
    result = run("predict", "Rossi", "--min-confidence", value, "--checkpoint", model)
    assert result.exit_code == 2 and "--min-confidence" in result.output


def test_names_in_other_scripts_are_read_and_predicted(model):
    rows = json_lines(ok("predict", "Иванов", "山田", "やまだ", "--json", "--checkpoint", model).stdout)
    assert [r["as_read"] for r in rows] == ["Ivanov", "Shantian", "Yamada"]
    assert all(len(r["predictions"]) == 3 and not r["abstained"] for r in rows)
    assert "reason" not in rows[0] and "kanji" in rows[1]["reason"]
    text = ok("predict", "Иванов", "山田", "--checkpoint", model).stdout.splitlines()
    assert "(read as Ivanov)" in text[0] and "read as Shantian; Han characters" in text[1]


def test_an_empty_validation_split_leaves_the_softmax_raw():
    assert fit_temperature(torch.empty(0, 3), torch.empty(0, dtype=torch.long)) == 1.0
