"""Conformal label sets, target priors, full names and the model id on every row: the pieces,
then through the real CLI (mostly on the shipped model, which records its label sets)."""

import csv
import hashlib
import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.errors import DataError
from charclf.files.checkpoint import load_checkpoint, save_checkpoint
from charclf.files.locations import resolve_checkpoint
from charclf.names.fullnames import family_name
from charclf.predict import conformal, priors
from charclf.predict.options import check


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def calibrated_sample(n: int, classes: int, generator: torch.Generator):
    """Probabilities and labels drawn from them: a perfectly calibrated model of a random world."""
    probs = torch.distributions.Dirichlet(torch.full((classes,), 0.3)).sample((n,))
    targets = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return probs, targets


def test_label_sets_reach_their_coverage_on_new_data_and_are_never_empty():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    stored = conformal.fit(*calibrated_sample(3000, 8, g))
    probs, targets = calibrated_sample(3000, 8, g)
    rows = conformal.report(probs, targets, stored, levels=(0.8, 0.9, 0.95))
    for row in rows:
        assert abs(row["coverage"] - row["coverage_target"]) < 0.025, row
    assert rows[0]["mean_size"] < rows[1]["mean_size"] < rows[2]["mean_size"]
    sets = conformal.label_sets(probs, conformal.threshold(stored, 0.9))
    assert all(s and s[0] == int(p.argmax()) for s, p in zip(sets, probs))
    assert all(probs[i, s].tolist() == sorted(probs[i, s].tolist(), reverse=True) for i, s in enumerate(sets[:50]))


def test_a_coverage_beyond_what_few_scores_can_promise_takes_every_label():
    stored = conformal.fit(torch.tensor([[0.6, 0.4], [0.3, 0.7]]), torch.tensor([1, 1]))
    assert stored["scores"] == [0.0, 0.6]  # row 2: top label; row 1: 1 - 0.4
    assert conformal.threshold(stored, 0.5) == 0.6  # the ceil(3 x 0.5) = 2nd score
    assert conformal.threshold(stored, 0.9) == float("inf")
    assert conformal.label_sets(torch.tensor([[0.9, 0.1]]), float("inf")) == [[0, 1]]
    with pytest.raises(ValueError, match="coverage must be a number between 0 and 1"):
        check("coverage", float("nan"))


def test_priors_reweight_by_bayes_rule_and_refuse_bad_files(tmp_path):
    probs = np.array([[0.5, 0.5], [0.9, 0.1]], dtype=np.float32)
    train = np.array([0.8, 0.2])
    shifted = priors.reweight(probs, np.array([0.5, 0.5]), train)
    assert np.allclose(shifted[0], [0.2, 0.8])  # 0.5/0.8 : 0.5/0.2
    assert np.allclose(shifted.sum(1), 1) and shifted.dtype == np.float32
    huge = priors.target_prior({"a": 1e308, "b": 1e308}, ["a", "b"])  # would overflow if added up as they are
    assert huge.tolist() == [0.5, 0.5]
    assert priors.target_prior("train", ["a", "b"]) is None
    assert priors.target_prior({"a": 3, "b": 1}, ["a", "b"]).tolist() == [0.75, 0.25]
    for bad in ({"a": 1}, {"a": 1, "b": -1}, {"a": 0, "b": 0}, {"a": 1, "b": 1, "c": 1}, {"a": float("nan"), "b": 1}):
        with pytest.raises(DataError):
            priors.target_prior(bad, ["a", "b"])
    (tmp_path / "p.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="JSON object"):
        priors.target_prior(str(tmp_path / "p.json"), ["a", "b"])
    with pytest.raises(DataError, match="training label counts"):
        priors.training_prior(None, "uniform")


@pytest.mark.parametrize("full, part", [
    ("Geoffrey Hinton", "Hinton"), ("Hinton, Geoffrey", "Hinton"), ("Ludwig van Beethoven", "van Beethoven"),
    ("Nguyen Van An", "Nguyen"), ("Kim Jong Un", "Kim"), ("Bruce Lee", "Lee"), ("Marine Le Pen", "Le Pen"),
    ("김민준", "김"), ("남궁민준", "남궁"), ("王小明", "王"), ("欧阳小明", "欧阳"), ("山田 太郎", "山田"),
    ("佐藤", "佐藤"), ("Madonna", "Madonna"), ("  Geoffrey   Everest  Hinton ", "Hinton"),
])
def test_the_family_name_of_a_full_name(full, part):
    assert family_name(full).part == part


def test_predict_gives_label_sets_and_the_model_id_on_every_row():
    rows = json_lines(ok("predict", "Hinton", "Rossi", "...", "--coverage", "0.95", "--json"))
    model_id = hashlib.sha256(resolve_checkpoint(None).read_bytes()).hexdigest()[:16]
    assert all(row["model"] == model_id for row in rows)
    hinton, rossi, dots = rows  # Rossi: Italian, with English not far behind
    assert hinton["label_set"][0] == hinton["label"] and len(rossi["label_set"]) >= 2
    assert dots["abstained"] and dots["reason"] and "label_set" not in dots
    wide = json_lines(ok("predict", "Rossi", "--coverage", "0.99", "--json"))[0]["label_set"]
    assert set(rossi["label_set"]) <= set(wide)
    text = ok("predict", "Rossi", "--coverage", "0.95")
    assert "[95% set: " + ", ".join(rossi["label_set"]) + "]" in text


@pytest.mark.parametrize("args", [["--coverage", "1"], ["--coverage", "0"], ["--coverage", "nan"],
                                  ["--coverage", "0.9", "--prior", "uniform"]])
def test_bad_coverage_options_are_usage_errors(args):
    result = run("predict", "Hinton", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_checkpoint_without_label_sets_says_so_in_one_line(tmp_path):
    checkpoint = load_checkpoint(resolve_checkpoint(None))
    del checkpoint.calibration["conformal"], checkpoint.calibration["train_counts"]
    save_checkpoint(tmp_path / "old.pt", checkpoint)
    for option in (["--coverage", "0.9"], ["--prior", "uniform"]):
        result = run("predict", "Hinton", "--checkpoint", tmp_path / "old.pt", *option)
        assert result.exit_code == 1 and "retrain" in result.output and len(result.output.splitlines()) == 1


def test_a_prior_moves_the_probabilities_toward_rare_labels(tmp_path):
    plain = json_lines(ok("predict", "Jones", "--json", "-k", "18"))[0]
    uniform = json_lines(ok("predict", "Jones", "--json", "-k", "18", "--prior", "uniform"))[0]
    p = {row["label"]: row["probability"] for row in plain["predictions"]}
    q = {row["label"]: row["probability"] for row in uniform["predictions"]}
    assert q["Russian"] < p["Russian"] and q["Portuguese"] > p["Portuguese"]
    assert abs(sum(q.values()) - 1) < 1e-4
    labels = list(p)
    only_english = tmp_path / "english.json"
    only_english.write_text(json.dumps({label: int(label == "English") for label in labels}))
    assert json_lines(ok("predict", "Kowalski", "--json", "--prior", only_english))[0]["predictions"][0] == \
        {"label": "English", "probability": 1.0}
    bad = run("predict", "Jones", "--prior", tmp_path / "missing.json")
    assert bad.exit_code == 1 and "no such file" in bad.output and len(bad.output.splitlines()) == 1


def test_full_names_classify_the_family_name_and_say_which():
    rows = json_lines(ok("predict", "--full-name", "--json", "Geoffrey Hinton", "Hinton, Geoffrey", "Nguyen Van An"))
    assert [row["family_name"] for row in rows] == ["Hinton", "Hinton", "Nguyen"]
    alone = json_lines(ok("predict", "Hinton", "--json"))[0]["predictions"]
    assert rows[0]["predictions"] == rows[1]["predictions"] == alone
    assert rows[2]["family_name_rule"].startswith("family name first")
    assert "(family name Hinton)" in ok("predict", "--full-name", "Geoffrey Hinton")


def test_evaluate_reports_label_sets_and_a_prior(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, "--epochs", "2", "--hidden-size", "8", "--no-progress", "--out", ckpt)
    calibration = load_checkpoint(ckpt).calibration
    assert calibration["train_counts"] and calibration["conformal"]["n"] == calibration["n"]
    report = json.loads(ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data, "--json", "--split", "train"))
    assert [row["coverage_target"] for row in report["label_sets"]] == [0.8, 0.9, 0.95]
    assert "label sets for 90%" in ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data, "--split", "train")
    shifted = json.loads(ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data, "--json", "--split", "train",
                            "--prior", "uniform"))
    assert shifted["prior"] == "uniform" and "label_sets" not in shifted
    assert sum(map(sum, shifted["confusion"])) == shifted["n"]


def test_tables_carry_label_sets_family_names_reasons_and_the_model(tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("full\nHiroshi Nakamura\nMarco Rossi\n\n", encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(ok("predict", "--csv", people, "--full-name", "--coverage", "0.95",
                                              "--min-confidence", "0.95"))))
    model_id = hashlib.sha256(resolve_checkpoint(None).read_bytes()).hexdigest()[:16]
    assert [row["family_name"] for row in rows] == ["Nakamura", "Rossi", ""]
    assert all(row["model"] == model_id for row in rows)
    confident, rossi, empty = rows
    assert confident["label_set"].split("|")[0] == confident["label"] and len(rossi["label_set"].split("|")) >= 2
    assert rossi["abstained"] == "true" and "below the minimum confidence" in rossi["reason"]
    assert confident["reason"] == "" and empty["error"] == "empty name"
    refused = run("predict", "--csv", people, "--coverage", "0.9", "--prior", "uniform")
    assert refused.exit_code == 2 and "cannot be combined" in refused.output
