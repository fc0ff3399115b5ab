"""The commands end to end through click's CliRunner, on the tiny fixture dataset."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.config import ARCHS
from charclf.files.checkpoint import load_checkpoint

FAST = ["--epochs", "1", "--hidden-size", "16", "--no-progress"]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def ok(*args, input=None):
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]



def test_train_keeps_the_first_epoch_with_the_best_validation_accuracy_then_macro_f1(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    out = ok("train", "--data", tiny_data, "--epochs", "6", "--hidden-size", "8", "--no-progress", "--out", ckpt).stdout
    history = json.loads(ckpt.with_suffix(".history.json").read_text())
    best = max(history, key=lambda row: (row["val_accuracy"], row["val_macro_f1"], -row["epoch"]))
    assert load_checkpoint(ckpt).metrics["best_epoch"] == best["epoch"]
    assert f"best epoch {best['epoch']} of 6" in out
    # Losses of the weights as stepped; scores (and a loss) of the averaged weights that are kept.
    assert all({"train_loss", "val_loss", "val_loss_kept"} <= set(row) for row in history)

@pytest.mark.parametrize("arch", ARCHS)
def test_train_evaluate_confusion_predict(arch, tiny_data, tmp_path):
    ckpt = tmp_path / f"{arch}.pt"
    out = ok("train", "--data", tiny_data, "--arch", arch, *FAST, "--out", ckpt).stdout
    assert f"saved {arch} model to {ckpt}" in out and "test:" in out
    assert ckpt.is_file()
    history = json.loads(ckpt.with_suffix(".history.json").read_text())
    assert [row["epoch"] for row in history] == [1]
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(history[0])
    assert ckpt.with_suffix(".curves.png").stat().st_size > 10_000

    text = ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data).stdout
    assert "accuracy" in text and "macro-F1" in text and "precision" in text
    assert "rows: true label, columns: predicted label" in text
    report = json.loads(ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data, "--json", "--split", "train").stdout)
    assert report["split"] == "train" and report["n"] == 19
    assert set(report["per_label"]) == {"English", "Italian", "Japanese"}
    assert sum(map(sum, report["confusion"])) == report["n"]
    assert 0 <= report["accuracy"] <= 1 and report["same_data_as_training"]

    assert "0." in ok("confusion", "--checkpoint", ckpt, "--data", tiny_data, "--normalize").stdout
    png = tmp_path / "plots" / "confusion.png"
    out = ok("confusion", "--checkpoint", ckpt, "--data", tiny_data, "--plot", "--out", png, "--no-show").stdout
    assert f"saved the confusion plot to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    lines = ok("predict", "Jones", "Yamamoto", "-k", "2", "--checkpoint", ckpt).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["Jones", "Yamamoto"]
    assert all(len(line.split()) == 5 for line in lines)  # name, then 2 x (label, probability)


def test_predict_json_file_and_stdin(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    rows = json_lines(ok("predict", "Jones", "Ślusàrski", "--json", "-k", "3", "--checkpoint", ckpt).stdout)
    assert [r["name"] for r in rows] == ["Jones", "Ślusàrski"]
    assert rows[1]["as_read"] == "Slusarski"
    probabilities = [p["probability"] for p in rows[0]["predictions"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)  # 3 labels: top-3 is everything
    names = tmp_path / "names.txt"
    names.write_text("Rossi\nTanaka\nSmith\n", encoding="utf-8")
    from_file = json_lines(ok("predict", "--file", names, "--json", "--checkpoint", ckpt).stdout)
    from_stdin = json_lines(ok("predict", "-", "--json", "--checkpoint", ckpt, input=names.read_text()).stdout)
    assert [r["name"] for r in from_file] == ["Rossi", "Tanaka", "Smith"]
    assert from_stdin == from_file


def test_predict_reports_bad_names_and_keeps_going(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes("Jones\n\n😀\n\xff\xfe\nSatoshi\n".encode("utf-8").replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"))
    result = run("predict", "--file", mixed, "--json", "--checkpoint", ckpt)
    assert result.exit_code == 1  # an undecodable line is an error; an unreadable name is `unknown`
    rows = json_lines(result.stdout)
    assert [r["name"] for r in rows][0] == "Jones" and rows[-1]["name"] == "Satoshi"
    assert [("error" in r) for r in rows] == [False, False, False, True, False]
    assert [r.get("label") for r in rows][1:3] == ["unknown", "unknown"]
    assert "line 4 is not valid UTF-8" in rows[3]["error"]
    assert "1 of 5 lines could not be read" in result.stderr
    assert "Traceback" not in result.output


def test_commands_use_the_model_train_wrote_by_default(tiny_data, isolated_home, monkeypatch):
    from charclf.files import locations

    monkeypatch.setattr(locations, "shipped_checkpoint", lambda: None)  # as if charclf shipped none
    result = run("predict", "Jones")
    assert result.exit_code == 1
    assert "no trained model" in result.stderr and "run `charclf train` first" in result.stderr
    ok("train", "--data", tiny_data, *FAST)
    assert (isolated_home / "model.pt").is_file()
    assert ok("predict", "Jones").stdout.startswith("Jones")
    assert "accuracy" in ok("evaluate", "--data", tiny_data).stdout


def test_evaluate_finds_the_training_data_by_itself(tiny_data, tmp_path, monkeypatch):
    monkeypatch.delenv("CHARCLF_DATA", raising=False)
    ok("train", "--data", tiny_data, *FAST, "--out", tmp_path / "m.pt")
    assert "accuracy" in ok("evaluate", "--checkpoint", tmp_path / "m.pt").stdout


def test_evaluate_warns_when_the_data_changed(tiny_data, tmp_path):
    ok("train", "--data", tiny_data, *FAST, "--out", tmp_path / "m.pt")
    with (tiny_data / "English.txt").open("a") as f:
        f.write("Newname\n")
    result = ok("evaluate", "--checkpoint", tmp_path / "m.pt", "--data", tiny_data)
    assert "differs from the one this model was trained on" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["train", "--model", "transformer"], 2, "Invalid value for '--model'"),
    (["train", "--epochs", "0"], 2, "Invalid value for '--epochs'"),
    (["train", "--hidden-size", "-3"], 2, "Invalid value for '--hidden-size'"),
    (["predict"], 2, "no names"),
    (["predict", "Jones", "--file", "x.txt"], 2, "not both"),
    (["train", "--data", "/nonexistent/names"], 1, "charclf data fetch"),
    (["predict", "Jones", "--checkpoint", "/nonexistent.pt"], 1, "no checkpoint file at /nonexistent.pt"),
])
def test_usage_and_runtime_errors_are_one_line(args, code, message):
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_train_refuses_an_unwritable_out_before_training(tiny_data):
    result = run("train", "--data", tiny_data, *FAST, "--out", "/proc/nope/m.pt")
    assert result.exit_code == 1 and "cannot write to /proc/nope/m.pt" in result.stderr


def test_train_without_cuda_says_so(tiny_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("train", "--data", tiny_data, *FAST, "--device", "cuda", "--out", tmp_path / "m.pt")
    assert result.exit_code == 1 and "no usable CUDA GPU" in result.stderr
    assert not (tmp_path / "m.pt").exists()


def test_every_command_has_help():
    for path in (["train"], ["evaluate"], ["confusion"], ["predict"], ["compare"], ["data"], ["data", "fetch"]):
        text = ok(*path, "--help").stdout
        assert "Usage:" in text and len(text.splitlines()) > 4


def test_help_does_not_import_torch_or_matplotlib():
    code = ("import sys; from charclf.cli import main; import charclf; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    out = subprocess.run([sys.executable, "-m", "charclf", "--help"], capture_output=True, text=True, check=True).stdout
    assert "Usage: charclf" in out and "predict" in out


def test_library_api_matches_the_cli(tiny_data, tmp_path):
    import charclf

    result = charclf.train(tiny_data, tmp_path / "m.pt", arch="rnn", model_options={"hidden_size": 8},
                           config=charclf.TrainConfig(epochs=1), progress=False)
    assert result.metrics["test"]["n"] == 3
    clf = charclf.load(tmp_path / "m.pt", device="cpu")
    [p] = clf.predict(["Rossi"], k=2)
    cli = json_lines(ok("predict", "Rossi", "-k", "2", "--json", "--checkpoint", tmp_path / "m.pt").stdout)[0]
    assert [(d["label"], round(d["probability"], 6)) for d in cli["predictions"]] == \
        [(label, round(x, 6)) for label, x in p.top]


def test_each_backbone_starts_from_its_own_defaults(tiny_data, tmp_path):
    from charclf.config import ARCH_DEFAULTS, default_of
    from charclf.files.checkpoint import load_checkpoint

    ok("train", "--data", tiny_data, "--model", "rnn", "--epochs", "1", "--no-progress", "--out", tmp_path / "r.pt")
    ck = load_checkpoint(tmp_path / "r.pt")
    assert ck.model_config.arch == "rnn"
    assert ck.model_config.hidden_size == ARCH_DEFAULTS["rnn"]["hidden_size"] != default_of("gru", "hidden_size")
    assert ck.train_config["clip_grad_norm"] == ARCH_DEFAULTS["rnn"]["clip_grad_norm"]
    assert ck.train_config["epochs"] == 1  # given on the command line: wins


def test_a_label_too_small_to_split_is_warned_about(tiny_data, tmp_path):
    (tiny_data / "Basque.txt").write_text("Etxeberria\n")
    result = ok("train", "--data", tiny_data, *FAST, "--out", tmp_path / "m.pt")
    assert "warning: label Basque has 1 name(s), none in the" in result.stderr


@pytest.mark.parametrize("name", ["😀", "", "   ", "12345", "...", "\x01\x02", "١٢٣"])
def test_unreadable_names_are_unknown_with_the_reason(tiny_data, tmp_path, name):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    result = ok("predict", name, "Rossi", "--json", "--checkpoint", ckpt)
    bad, good = json_lines(result.stdout)
    reason = "empty name" if not name.strip() else "no letters to read, even after transliteration to Latin"
    assert bad == {"name": name, "as_read": bad["as_read"], "script": "other", "label": "unknown", "abstained": True,
                   "reason": reason, "predictions": [], "model": good["model"]}
    assert good["predictions"] and not good["abstained"]
    text = ok("predict", name, "--checkpoint", ckpt).stdout
    assert f"unknown: {reason}" in text


def test_control_characters_are_read_and_a_100k_letter_name_is_an_error_of_its_line(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    names = tmp_path / "names.txt"
    names.write_text("Ro\x01ssi\n" + "x" * 100_000 + "\n" + "x" * 1000 + "\n")
    result = run("predict", "--file", names, "--json", "--checkpoint", ckpt)
    assert result.exit_code == 1 and "line 2 is longer than 1000 characters" in result.stderr
    rows = json_lines(result.stdout)
    assert rows[0]["as_read"] == "Rossi" and "longer than 1000" in rows[1]["error"] and len(rows[2]["as_read"]) == 1000
    assert len(rows[0]["predictions"]) == 3 == len(rows[2]["predictions"])


def test_compare_trains_every_backbone_and_the_baseline_on_one_split(tiny_data, tmp_path):
    out = ok("compare", "--data", tiny_data, "--epochs", "1", "--no-progress", "--out-dir", tmp_path / "cmp").stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "test", "acc"]
    assert [line.split()[0] for line in lines[1:5]] == ["gru", "lstm", "rnn", "ngram"]
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["arch"] for r in rows] == ["gru", "lstm", "rnn", "ngram"] and all(r["epochs"] == 1 for r in rows)
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
    for row, line in zip(rows, lines[1:5]):
        assert line.split()[1:4] == [f"{row['test_accuracy']:.4f}", f"{row['test_macro_f1']:.4f}",
                                     f"{row['parameters']:,}"]
        assert load_checkpoint(row["checkpoint"]).model_config.arch == row["arch"]
        # Accuracy by name length covers every test name once.
        groups = row["test_accuracy_by_length"]
        assert sum(g["n"] for g in groups.values()) == 3
    assert "test accuracy by name length (letters):" in out
    assert run("compare", "--archs", "gru,transformer").exit_code == 2


@pytest.mark.parametrize("files, message", [
    (None, "no dataset folder at"),
    ({}, "no <Label>.txt files"),
    ({"A.txt": b"Smith\n", "B.txt": b""}, "B.txt holds no names"),
    ({"A.txt": b"Smith\n", "B.txt": b"Jones\n\xff\xfeX\n"}, "B.txt, line 2: not valid UTF-8"),
    ({"Only.txt": b"Smith\nJones\n"}, "only one label"),
])
def test_bad_datasets_through_the_cli(tmp_path, files, message):
    folder = tmp_path / "d"
    if files is not None:
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
    result = run("train", "--data", folder, *FAST, "--out", tmp_path / "m.pt")
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "m.pt").exists()


def test_bad_checkpoints_through_the_cli(tiny_data, tmp_path):
    import torch

    good = tmp_path / "good.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", good)
    payload = torch.load(good, weights_only=True)
    files = {
        "empty.pt": b"",
        "random.pt": bytes(range(256)) * 40,
        "truncated.pt": good.read_bytes()[:2000],
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({**payload, "format": 7}, tmp_path / "version.pt")
    torch.save({**payload, "model_config": {**payload["model_config"], "hidden_size": 17}}, tmp_path / "shape.pt")
    for name in [*files, "version.pt", "shape.pt"]:
        result = run("predict", "Jones", "--checkpoint", tmp_path / name)
        assert result.exit_code == 1, name
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("Error: ") and name in line, line


def test_train_help_shows_each_backbones_own_defaults():
    from charclf.config import default_of

    text = " ".join(ok("train", "--help").stdout.split())  # undo click's line wrapping
    lr = ", ".join(f"{arch} {default_of(arch, 'lr'):g}" for arch in ARCHS)
    assert f"[default: {lr}]" in text
    hidden = ", ".join(f"{arch} {default_of(arch, 'hidden_size')}" for arch in ARCHS)
    assert f"--hidden-size INTEGER RANGE [default: {hidden}]" in text
    # One value when every backbone has the same.
    assert f"--epochs INTEGER RANGE [default: {default_of('gru', 'epochs')}]" in text
    assert "--bidirectional / --unidirectional [default: bidirectional]" in text
    assert "--model, --arch [gru|lstm|rnn|ngram]" in text


def test_threads_are_set_by_option_or_environment(tiny_data, tmp_path, monkeypatch):
    """--threads and $CHARCLF_THREADS reach torch; a bad value is a usage error (exit 2)."""
    import torch

    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--threads", "2", "--out", ckpt)
    assert torch.get_num_threads() == 2
    ok("predict", "Rossi", "--checkpoint", ckpt, "--backend", "torch")
    assert torch.get_num_threads() == 1  # a few names: one thread
    monkeypatch.setenv("CHARCLF_THREADS", "3")
    ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data, "--backend", "torch")
    assert torch.get_num_threads() == 3
    ok("predict", "Rossi", "--checkpoint", ckpt, "--threads", "2", "--backend", "torch")
    assert torch.get_num_threads() == 2  # the option wins
    from charclf.predict.onnx_runtime import OnnxBackend

    threads = []  # ONNX Runtime's workers (the default backend) get the same count
    init = OnnxBackend.__init__
    monkeypatch.setattr(OnnxBackend, "__init__", lambda self, path, threads_=1: threads.append(threads_) or
                        init(self, path, threads_))
    ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data)
    ok("predict", "Rossi", "--checkpoint", ckpt, "--threads", "2")
    assert threads == [3, 2]
    monkeypatch.setenv("CHARCLF_THREADS", "many")
    result = run("predict", "Rossi", "--checkpoint", ckpt)
    assert result.exit_code == 2 and "CHARCLF_THREADS must be a whole number" in result.stderr
    assert run("train", "--threads", "0").exit_code == 2
    for command in ("train", "compare", "evaluate", "calibration", "confusion", "predict"):
        assert "--threads N" in ok(command, "--help").stdout


@pytest.mark.parametrize("load, expected", [(0.0, 4), (1.2, 3), (3.6, 1), (9.0, 1)])
def test_batch_work_uses_the_free_cores(tiny_data, tmp_path, monkeypatch, load, expected):
    """With nothing given, a file of names gets the cores the load average leaves free."""
    import os

    import torch

    monkeypatch.delenv("CHARCLF_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, *FAST, "--out", ckpt)
    assert torch.get_num_threads() == expected
    names = tmp_path / "names.txt"
    names.write_text("Rossi\nTanaka\n")
    ok("predict", "--file", names, "--checkpoint", ckpt, "--backend", "torch")
    assert torch.get_num_threads() == expected
    ok("predict", "Rossi", "Tanaka", "--checkpoint", ckpt, "--backend", "torch")
    assert torch.get_num_threads() == 1
