"""A short training run on the real 18-language dataset must clearly beat the majority baseline."""

import json

from click.testing import CliRunner

from charclf.cli import main


def test_brief_training_beats_the_majority_baseline(real_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--data", str(real_data), "--epochs", "3", "--out", str(ckpt),
                                   "--no-progress"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["evaluate", "--checkpoint", str(ckpt), "--data", str(real_data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 1797 and report["majority_baseline"]["label"] == "Russian"
    baseline = report["majority_baseline"]["accuracy"]  # about 0.51
    assert report["accuracy"] > baseline + 0.15, report["accuracy"]
    assert report["macro_f1"] > 0.3, report["macro_f1"]  # the baseline's is 0.04
    # The temperature fitted on validation makes the test probabilities better calibrated.
    calibration = report["calibration"]
    assert calibration["after"]["ece"] < calibration["before"]["ece"], calibration
    assert calibration["after"]["nll"] < calibration["before"]["nll"], calibration
    rows = [json.loads(line) for line in runner.invoke(
        main, ["predict", "Nakamura", "Ivanov", "--json", "-k", "3", "--checkpoint", str(ckpt)]).stdout.splitlines()]
    assert [r["predictions"][0]["label"] for r in rows] == ["Japanese", "Russian"]
