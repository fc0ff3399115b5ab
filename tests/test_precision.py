"""--precision: float32 by default, bfloat16 products on request (charclf.predict.precision)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.config import ModelConfig
from charclf.files.checkpoint import Checkpoint
from charclf.files.locations import shipped_checkpoint
from charclf.models.build import build_model
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.classifier import Classifier
from charclf.predict.inference import batched_logits
from charclf.predict.precision import native_bfloat16, pick_precision, precision_name

CPU = torch.device("cpu")
# Where the CPU has bfloat16 instructions a name's numbers do not depend on its batch, to the last
# digit; elsewhere torch emulates bfloat16, and they are only held close.
SAME = (lambda a, b: a == b) if native_bfloat16() else (lambda a, b: bool(np.allclose(a, b, atol=0.02)))
NAMES = ["Jones", "Nakamura", "Rossi", "Schmidt", "Ivanov", "Dubois", "Kowalski", "Nguyen", "Papadopoulos",
         "O'Brien", "Hinton", "Satoshi", "Li", "Abe", "Smith", "Novak", "Haddad", "Fernandez", "Murphy", "Kim"]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def ok(*args, env=None):
    result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def answers(text: str) -> dict[str, list[dict]]:
    return {row["name"]: row["predictions"] for row in map(json.loads, text.splitlines())}


def test_float32_unless_asked(monkeypatch):
    monkeypatch.delenv("CHARCLF_PRECISION", raising=False)
    assert precision_name(None) == "float32" and pick_precision(None, CPU) == "float32"
    monkeypatch.setenv("CHARCLF_PRECISION", "bfloat16")
    assert pick_precision(None, CPU) == "bfloat16" and pick_precision("float32", CPU) == "float32"
    monkeypatch.setenv("CHARCLF_PRECISION", "half")
    with pytest.raises(ValueError, match="CHARCLF_PRECISION must be one of float32, bfloat16, auto"):
        pick_precision(None, CPU)


def test_auto_is_bfloat16_only_on_a_cpu_with_the_instructions(monkeypatch):
    import charclf.predict.precision

    for native in (True, False):
        monkeypatch.setattr(charclf.predict.precision, "native_bfloat16", lambda: native)
        assert pick_precision("auto", CPU) == ("bfloat16" if native else "float32")
        assert pick_precision("auto", torch.device("cuda")) == "float32"  # only reads the device's type


@pytest.mark.parametrize("arch", ["gru", "lstm", "rnn"])
def test_bfloat16_logits_are_float32_close_and_do_not_depend_on_the_batch(arch):
    if arch == "lstm" and not native_bfloat16():
        pytest.skip("oneDNN has no emulated bfloat16 LSTM: on this CPU the torch backend refuses it (tested below)")
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=4)
    model = build_model(config)
    names = [name.lower() for name in NAMES]
    exact = batched_logits(model, names, DEFAULT_ALPHABET, CPU)
    fast = batched_logits(model, names, DEFAULT_ALPHABET, CPU, precision="bfloat16")
    assert fast.dtype == torch.float32 and 0 < (fast - exact).abs().max() < 0.1
    # A name's numbers are the same alone (a lone name runs as two copies) and in any batch.
    for i in (0, 7, 19):
        alone = batched_logits(model, [names[i]], DEFAULT_ALPHABET, CPU, precision="bfloat16")
        assert SAME(alone[0].tolist(), fast[i].tolist())
    assert SAME(batched_logits(model, names[5:], DEFAULT_ALPHABET, CPU, precision="bfloat16").tolist(),
                fast[5:].tolist())


def test_predict_in_bfloat16_through_the_cli(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    exact = answers(ok("predict", "--file", names, "--json"))
    fast = answers(ok("predict", "--file", names, "--json", "--precision", "bfloat16"))
    assert answers(ok("predict", "--file", names, "--json", env={"CHARCLF_PRECISION": "bfloat16"})) == fast
    assert exact != fast and list(exact) == list(fast) == NAMES
    for name in NAMES:
        assert fast[name][0]["label"] == exact[name][0]["label"]
        assert fast[name][0]["probability"] == pytest.approx(exact[name][0]["probability"], abs=0.02)
    # One name on its own gets what it gets among the others, to the last digit.
    alone = answers(ok("predict", "Hinton", "--json", "--precision", "bfloat16"))["Hinton"]
    assert [p["label"] for p in alone] == [p["label"] for p in fast["Hinton"]]
    assert SAME([p["probability"] for p in alone], [p["probability"] for p in fast["Hinton"]])


def test_explain_ends_with_what_predict_answers_in_bfloat16():
    clf = charclf.load(device="cpu", precision="bfloat16")
    assert "in bfloat16" in repr(clf)
    result = clf.explain("Papadopoulos", k=3)
    final = clf.predict(["Papadopoulos"], k=3)[0].top
    assert [t["label"] for t in result["letters"][-1]["top"]] == [label for label, _ in final]
    assert SAME([t["probability"] for t in result["letters"][-1]["top"]], [round(p, 6) for _, p in final])


def test_evaluate_in_bfloat16_keeps_the_recorded_accuracy(real_data):
    recorded = charclf.load(shipped_checkpoint(), device="cpu").checkpoint.metrics["test"]
    exact = json.loads(ok("evaluate", "--data", real_data, "--json"))
    fast = json.loads(ok("evaluate", "--data", real_data, "--json", "--precision", "bfloat16"))
    assert exact["accuracy"] == recorded["accuracy"]
    assert abs(fast["accuracy"] - recorded["accuracy"]) < 0.005 and abs(fast["macro_f1"] - recorded["macro_f1"]) < 0.02


def test_a_bad_precision_is_a_usage_error():
    for args, env in ((["--precision", "half"], None), ([], {"CHARCLF_PRECISION": "half"})):
        result = run("predict", "Jones", *args, env=env)
        assert result.exit_code == 2 and "Invalid value for '--precision'" in result.output
        assert "Traceback" not in result.output


def test_the_ngram_baseline_always_runs_in_float32():
    torch.manual_seed(0)
    config = ModelConfig(arch="ngram", n_letters=len(DEFAULT_ALPHABET), n_classes=2, ngram_buckets=4096)
    checkpoint = Checkpoint(config, DEFAULT_ALPHABET, ["A", "B"], state_dict=build_model(config).state_dict())
    assert Classifier.from_checkpoint(checkpoint, device="cpu", precision="bfloat16").precision == "float32"


@pytest.mark.skipif(native_bfloat16(), reason="this CPU runs bfloat16 LSTMs")
def test_a_bfloat16_lstm_is_refused_in_one_line_where_the_cpu_cannot_run_it(tiny_data, tmp_path):
    out = tmp_path / "lstm.pt"
    ok("train", "--data", tiny_data, "--model", "lstm", "--epochs", "1", "--no-progress", "--out", out)
    result = run("predict", "Jones", "--checkpoint", out, "--precision", "bfloat16")
    assert result.exit_code == 1 and "needs a CPU with bfloat16 instructions" in result.output
    assert len(result.output.splitlines()) == 1
