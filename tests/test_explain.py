"""`charclf explain`: the answer after every letter, from one batched pass over the prefixes."""

import json

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint
from charclf.predict.loading import load as load_model

SHIPPED = shipped_checkpoint()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def clf():
    return load_model(SHIPPED, device="cpu")


def test_every_row_is_the_prediction_for_that_prefix(clf):
    """Row i answers exactly as predict does for the first i letters alone: later letters leak
    into no row, the bidirectional default's backward pass included."""
    assert clf.checkpoint.model_config.bidirectional
    result = clf.explain("Hinton", k=3)
    assert [row["letter"] for row in result["letters"]] == list("Hinton")
    for row in result["letters"]:
        alone = clf.predict([result["as_read"][:row["position"]]], k=3)[0]
        assert [t["label"] for t in row["top"]] == [label for label, _ in alone.top]
        assert [t["probability"] for t in row["top"]] == pytest.approx([p for _, p in alone.top], abs=1e-5)
    assert result["label"] == clf.predict(["Hinton"])[0].label == "English"


def test_all_prefixes_go_to_the_model_as_one_batch(clf, monkeypatch):
    calls = []
    logits = clf.backend.logits
    monkeypatch.setattr(clf.backend, "logits", lambda names: calls.append(names) or logits(names))
    clf.explain("Papadopoulos")
    assert calls == [["P", "Pa", "Pap", "Papa", "Papad", "Papado", "Papadop", "Papadopo", "Papadopou",
                      "Papadopoul", "Papadopoulo", "Papadopoulos"]]  # 12 prefixes, one batch


def test_tracked_labels_and_the_letters_that_moved_the_answer(clf):
    result = clf.explain("Hinton", k=2)
    final = [t["label"] for t in result["letters"][-1]["top"]]
    leaders = {row["top"][0]["label"] for row in result["letters"]}
    assert result["tracked"][:2] == final and leaders <= set(result["tracked"])
    changes = [now["probabilities"]["English"] - before["probabilities"]["English"]
               for before, now in zip(result["letters"], result["letters"][1:])]
    biggest = max(range(len(changes)), key=lambda i: abs(changes[i]))
    point = result["turning_points"][0]
    assert point["position"] == biggest + 2 and point["change"] == pytest.approx(changes[biggest], abs=1e-5)
    assert len(result["turning_points"]) == 3


def test_cli_table(clf):
    out = ok("explain", "Hinton", "--checkpoint", SHIPPED).stdout
    lines = out.splitlines()
    assert lines[0].startswith("Hinton: English 0.")
    table = [line.split() for line in lines if line[:3].strip().isdigit()]
    assert [row[1] for row in table] == ["H", "Hi", "Hin", "Hint", "Hinto", "Hinton"]
    assert all(len(row) == 2 + 1 + 6 for row in table[1:])  # number, prefix, change, 3 x (label, probability)
    assert "letters that moved English most:" in lines[-1]


def test_cli_json_is_the_api_result(clf):
    out = ok("explain", "Hinton", "--json", "-k", "4", "--checkpoint", SHIPPED).stdout
    assert json.loads(out) == clf.explain("Hinton", k=4)


def test_a_name_in_another_script_is_shown_as_typed_and_as_read(clf, tmp_path):
    result = json.loads(ok("explain", "Иванов", "--json", "--checkpoint", SHIPPED).stdout)
    assert result["as_read"] == "Ivanov" and result["label"] == "Russian"
    assert [(row["letter"], row["typed"]) for row in result["letters"]] == list(zip("Ivanov", "Иванов"))
    han = clf.explain("山田")
    assert han["caveats"] and {row["typed"] for row in han["letters"]} == {"山", "田"}
    out = ok("explain", "Иванов", "--checkpoint", SHIPPED).stdout
    assert "(read as Ivanov)" in out and " И " in out and "typed" in out


@pytest.mark.parametrize("name", ["Hinton", "Иванов"])
def test_plot(name, tmp_path):
    png = tmp_path / "out" / "explain.png"
    result = ok("explain", name, "--plot", png, "--no-show", "--checkpoint", SHIPPED)
    assert f"saved the letter-by-letter plot to {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize("options", [["--arch", "lstm", "--unidirectional", "--pooling", "last"], ["--model", "ngram"]])
def test_other_backbones(options, tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *options, "--epochs", "1", "--hidden-size", "8", "--no-progress", "--out", ckpt)
    result = json.loads(ok("explain", "Yamamoto", "--json", "--checkpoint", ckpt).stdout)
    predicted = json.loads(ok("predict", "Yamamoto", "--json", "--checkpoint", ckpt).stdout)
    last = result["letters"][-1]["top"]
    assert [t["label"] for t in last] == [p["label"] for p in predicted["predictions"]]
    expected = [p["probability"] for p in predicted["predictions"]]
    assert [t["probability"] for t in last] == pytest.approx(expected, abs=1e-5)
    assert len(result["letters"]) == 8


@pytest.mark.parametrize("args, code, message", [
    (["explain", "..."], 2, "has no letters to read"),
    (["explain", "a" * 257], 2, "too long to explain: 257 letters as read, at most 256"),
    (["explain", "Jones", "-k", "0"], 2, "Invalid value for '-k'"),
    (["explain"], 2, "Missing argument 'NAME'"),
    (["explain", "Jones", "--checkpoint", "/nonexistent.pt"], 1, "no checkpoint file at /nonexistent.pt"),
    (["explain", "Jones", "--plot", "/proc/nope/x.png"], 1, "cannot write /proc/nope/x.png"),
])
def test_errors_are_one_line(args, code, message):
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output
