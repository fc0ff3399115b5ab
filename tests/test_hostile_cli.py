"""Hostile strings and paths through the real command line: a model card's strings and an error's
file name reach the terminal escaped (charclf.printable), a name with $ is drawn as text, and
`compare` refuses a checkpoint it could not write before any backbone trains."""

from pathlib import Path

import hostile
import pytest
from click.testing import CliRunner
from conftest import TINY

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint

FORGED = "2026\x1b]0;owned\x07\nforged: line\x1b[31m\u202e"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_escapes_the_strings_of_a_model_card(tmp_path):
    def change(payload):
        payload["train_config"]["saved_at"] = FORGED
        payload["train_config"]["device"] = "cpu\nlabels:      18: all English"
    model = hostile.mutated(shipped_checkpoint(), tmp_path / "odd\x1b[2Jname.pt", change)
    result = run("info", "--checkpoint", model)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("odd\\x1b[2Jname.pt") and sum(line.lstrip().startswith("labels:") for line in lines) == 1
    assert "saved 2026\\x1b]0;owned\\x07\\nforged: line\\x1b[31m\\u202e" in lines[1]
    assert run("info", "--checkpoint", model, "--json").output.count("\\u001b]0;owned") == 1  # JSON escapes itself


def test_an_error_naming_a_file_escapes_it(tmp_path):
    result = run("predict", "Jones", "--checkpoint", tmp_path / "x\x1b]0;owned\x07\n.pt")
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "\x1b" not in result.stderr and "x\\x1b]0;owned\\x07\\n.pt" in result.stderr


@pytest.mark.parametrize("name", ["Jo$\\frac$n", "Smith$_$", "$O'Brien"])
def test_explain_plots_a_name_with_dollars_as_text(tmp_path, name):
    pytest.importorskip("matplotlib")
    result = run("explain", name, "--plot", tmp_path / "explain.png", "--no-show")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "explain.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_refuses_a_checkpoint_it_cannot_write_before_training(tmp_path):
    data = tmp_path / "names"
    data.mkdir()
    for label, names in TINY.items():
        (data / f"{label}.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "compare"
    (out / "lstm.pt").mkdir(parents=True)  # the second backbone's checkpoint: a folder
    result = run("compare", "--data", data, "--archs", "gru,lstm", "--epochs", "1", "--out-dir", out, "--no-progress")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: will not write {out / 'lstm.pt'}: it is a folder, not a regular file (charclf replaces only "
        "regular files); choose another --out-dir")
    assert sorted(p.name for p in out.iterdir()) == ["lstm.pt"]  # gru never trained
    assert not any(Path(out / "lstm.pt").iterdir())
    (out / "lstm.pt").rmdir()
    (out / "lstm.pt").write_text("my notes\n")  # not a checkpoint, and compare has no --force to offer
    result = run("compare", "--data", data, "--archs", "gru,lstm", "--epochs", "1", "--out-dir", out, "--no-progress")
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1] == (
        f"Error: {out / 'lstm.pt'} exists and is not a charclf checkpoint: choose another --out-dir")
    assert (out / "lstm.pt").read_text() == "my notes\n"


def test_predict_and_explain_show_a_name_with_control_characters_escaped(tmp_path):
    name = "Jo\x1b]0;owned\x07n\u202ees"
    (tmp_path / "names.txt").write_text(name + "\nSmith\n", encoding="utf-8")
    predicted = run("predict", "--file", tmp_path / "names.txt")
    explained = run("explain", name)
    assert predicted.exit_code == explained.exit_code == 0, predicted.output + explained.output
    for output in (predicted.output, explained.output):
        assert not any(c in output for c in "\x1b\x07\u202e") and "Jo\\x1b]0;owned\\x07n\\u202ees" in output
    assert len(predicted.output.splitlines()) == 2
