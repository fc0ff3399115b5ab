"""--members: several networks trained side by side, their probabilities averaged."""

import json

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.config import ModelConfig
from charclf.files.checkpoint import load_checkpoint
from charclf.models.build import build_model, weight_shapes
from charclf.models.ensemble import Ensemble, average_probabilities
from charclf.models.model import NameClassifier
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.inference import batched_logits

from tests.test_faults import SMALL, charclf, kill_at_epoch, resume_run, synthetic_data  # noqa: F401 (synthetic_data: a fixture)

NAMES = ["Jones", "Nakamura", "Li", "Abramovich", "O'Neill", "Smith", "Ng"]


def config(**options) -> ModelConfig:
    return ModelConfig(arch="gru", n_letters=len(DEFAULT_ALPHABET), n_classes=4, hidden_size=8, **options)


def test_the_ensemble_averages_its_members_probabilities():
    torch.manual_seed(0)
    model = build_model(config(members=3)).eval()
    assert isinstance(model, Ensemble) and all(isinstance(m, NameClassifier) for m in model.members)
    padded, lengths = model.index(NAMES, DEFAULT_ALPHABET)
    with torch.no_grad():
        each = [torch.softmax(member(padded, lengths), dim=1) for member in model.members]
        mean = sum(each) / 3
        assert torch.allclose(torch.softmax(model(padded, lengths), dim=1), mean, atol=1e-6)
        assert not torch.allclose(each[0], each[1])  # each member starts from its own weights
        # Prediction's same-length batches give the numbers of one padded batch.
        grouped = batched_logits(model, NAMES, DEFAULT_ALPHABET, torch.device("cpu"))
    assert torch.allclose(grouped, model(padded, lengths), atol=1e-5)


def test_average_probabilities_of_one_member_is_its_log_softmax():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(average_probabilities([logits]), torch.log_softmax(logits, dim=1))
    assert torch.allclose(average_probabilities([logits, logits]).exp().sum(), torch.tensor(1.0))


def test_weight_shapes_of_an_ensemble_are_the_built_ones():
    c = config(members=2, num_layers=2)
    assert weight_shapes(c) == {k: tuple(t.shape) for k, t in build_model(c).state_dict().items()}
    first_member = {k.split(".", 2)[2] for k in weight_shapes(c) if k.startswith("members.0.")}
    assert set(weight_shapes(config(num_layers=2))) == first_member


def test_the_ngram_baseline_has_no_members():
    with pytest.raises(ValueError, match="members must be 1"):
        ModelConfig(arch="ngram", n_letters=57, n_classes=4, members=2)
    result = CliRunner().invoke(main, ["train", "--model", "ngram", "--members", "2"])
    assert result.exit_code == 2 and "--members" in result.stderr and "Traceback" not in result.output


def test_members_train_predict_explain_and_export_through_the_cli(tiny_data, tmp_path):
    out = tmp_path / "ens.pt"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--data", str(tiny_data), "--members", "2", "--epochs", "2",
                                   "--hidden-size", "16", "--no-progress", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "2 members" in trained.stderr
    ck = load_checkpoint(out)
    assert ck.model_config.members == 2
    weights = ck.state_dict
    assert {k.split(".")[1] for k in weights} == {"0", "1"}  # members.0.*, members.1.*: nothing else
    assert not torch.equal(weights["members.0.head.weight"], weights["members.1.head.weight"])

    predicted = runner.invoke(main, ["predict", "Jones", "--checkpoint", str(out), "--json"])
    assert predicted.exit_code == 0, predicted.output
    top = json.loads(predicted.output.splitlines()[0])["predictions"]
    assert len(top) == 3 and top[0]["label"] in ck.labels and 0 < top[0]["probability"] <= 1

    info = runner.invoke(main, ["info", "--checkpoint", str(out)])
    assert "an ensemble of 2 networks" in info.output
    assert runner.invoke(main, ["explain", "Jones", "--checkpoint", str(out)]).exit_code == 0

    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "ens.onnx"
    assert runner.invoke(main, ["export", str(onnx), "--checkpoint", str(out)]).exit_code == 0
    a = runner.invoke(main, ["predict", "Jones", "Nakamura", "--checkpoint", str(out), "--json"])
    b = runner.invoke(main, ["predict", "Jones", "Nakamura", "--checkpoint", str(onnx), "--json"])
    for x, y in zip(a.output.splitlines(), b.output.splitlines()):
        px, py = json.loads(x)["predictions"], json.loads(y)["predictions"]
        assert [p["label"] for p in px] == [p["label"] for p in py]
        assert all(abs(p["probability"] - q["probability"]) < 1e-5 for p, q in zip(px, py))


def test_a_killed_ensemble_run_resumes_to_the_same_weights(synthetic_data, tmp_path):  # noqa: F811
    args = ["train", "--data", synthetic_data, "--epochs", "6", "--members", "2", *SMALL]
    straight = tmp_path / "straight.pt"
    assert charclf(*args, "--out", straight).wait(timeout=300) == 0
    killed = tmp_path / "killed.pt"
    kill_at_epoch(args, killed, 2)
    resumed = resume_run(args, killed)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_checkpoint(straight).state_dict, load_checkpoint(killed).state_dict
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
