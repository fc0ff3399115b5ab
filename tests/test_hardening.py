"""Hostile files and careless paths through the real CLI: each is refused with one line, and
nothing that was there before is damaged (docs/hardening.md lists every case)."""

import errno
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import hostile
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY

from charclf.cli import main
from charclf.files import archive
from charclf.files import atomic as files
from charclf.files.checkpoint import load_checkpoint
from charclf.training import train as training
from charclf.training.outputs import output_lock

SMALL = ["--epochs", "1", "--hidden-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(dataset folder, a checkpoint trained on it): shared by the tests, never modified."""
    folder = tmp_path_factory.mktemp("trained")
    data = folder / "names"
    data.mkdir()
    for label, names in TINY.items():
        (data / f"{label}.txt").write_text("\n".join(names) + "\n")
    out = folder / "m.pt"
    result = CliRunner().invoke(main, ["train", "--data", str(data), *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return data, out


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def refused(result, message, code=1):
    """The command failed with exit `code` and one line on stderr holding `message`."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and message in result.stderr, result.stderr
    if code == 1:  # training may log lines first; the error is the last, whole on its line
        assert message in result.stderr.strip().splitlines()[-1] and result.stderr.count("Error") == 1
    return result


# --- where train writes ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink to a device", "symlink to a fifo"])
def test_train_never_replaces_what_is_not_a_regular_file(trained, tmp_path, kind):
    data, _ = trained
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = fifo if kind == "fifo" else tmp_path / "link.pt"
    if kind != "fifo":
        out.symlink_to("/dev/null" if "device" in kind else fifo)
    refused(run("train", "--data", data, *SMALL, "--out", out), "not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and os.path.islink(out) == (kind != "fifo")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"fifo", out.name})  # no side files


def test_train_refuses_dev_null_before_writing_anything(trained, monkeypatch):
    data, _ = trained

    def never(*args, **kwargs):  # were the check ever lost, this stops the run before any write
        raise AssertionError("reached training: /dev/null was not refused first")

    monkeypatch.setattr(training.distributed, "session", never)
    monkeypatch.setattr(files.os, "replace", never)
    before = sorted(os.listdir("/dev"))
    refused(run("train", "--data", data, *SMALL, "--out", "/dev/null"), "will not write /dev/null: it is a device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert sorted(os.listdir("/dev")) == before  # no history, curves, probe or temp file beside it


def test_train_refuses_a_side_file_that_is_not_a_regular_file(trained, tmp_path):
    data, _ = trained
    os.mkfifo(tmp_path / "m.history.json")
    refused(run("train", "--data", data, *SMALL, "--out", tmp_path / "m.pt"), "m.history.json: it is a pipe")
    assert not (tmp_path / "m.pt").exists()


def test_train_never_writes_into_its_dataset(trained, tmp_path):
    data, _ = trained
    before = (data / "English.txt").read_bytes()
    for out in (data / "English.txt", data / "model.pt", data / "sub" / ".." / "x.pt"):
        refused(run("train", "--data", data, *SMALL, "--out", out, "--force"), "inside the dataset")
    assert (data / "English.txt").read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["English.txt", "Italian.txt", "Japanese.txt"]


def test_train_replaces_a_file_that_is_not_a_checkpoint_only_when_forced(trained, tmp_path):
    data, checkpoint = trained
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes\n")
    refused(run("train", "--data", data, *SMALL, "--out", notes), "is not a charclf checkpoint: pass --force")
    assert notes.read_text() == "my notes\n"
    assert run("train", "--data", data, *SMALL, "--out", notes, "--force").exit_code == 0
    assert load_checkpoint(notes).labels == list(TINY)
    # A checkpoint is replaced without --force, as retraining always did.
    assert run("train", "--data", data, *SMALL, "--out", notes).exit_code == 0


def test_two_runs_never_write_the_same_checkpoint_at_once(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "m.pt"
    with output_lock(out):  # another run holds it
        refused(run("train", "--data", data, *SMALL, "--out", out), "another charclf run is writing")
    assert not out.exists()
    assert run("train", "--data", data, *SMALL, "--out", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.curves.png", "m.history.json", "m.onnx", "m.pt"]


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_old_checkpoint(trained, tmp_path, monkeypatch):
    data, checkpoint = trained
    out = tmp_path / "m.pt"
    out.write_bytes(checkpoint.read_bytes())
    real_fdopen = os.fdopen

    class FullDisk:  # a file that takes 1000 bytes, then reports ENOSPC as a full disk does
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    refused(run("train", "--data", data, *SMALL, "--out", out), "No space left on device")
    monkeypatch.undo()
    assert out.read_bytes() == checkpoint.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- checkpoints that must not load --------------------------------------------------------


def _set_weights(value):
    def change(payload):
        key = next(iter(payload["model"]))
        payload["model"][key] = torch.full_like(payload["model"][key], value)
    return change


@pytest.mark.parametrize("change, message", [
    (lambda p: p["model_config"].update(num_layers=10**6), "num_layers must be at most 16, got 1000000"),
    (lambda p: p["model_config"].update(hidden_size=10**7), "hidden_size must be at most 4096"),
    (lambda p: p["model_config"].update(hidden_size=2.5), "hidden_size must be an int, got 2.5"),
    (lambda p: p["model_config"].update(bidirectional="yes"), "bidirectional must be a bool"),
    (lambda p: p["model_config"].update(hidden_size=9),
     "its weights do not fit its model config (rnn.weight_ih_l0: [24, 48], expected [27, 48])"),
    (lambda p: p["model_config"].update(hidden_size=4096, num_layers=16), "17.3 GiB of weights, more than the 1 GiB"),
    (_set_weights(math.nan), "holds NaN or infinite numbers"),
    (_set_weights(math.inf), "holds NaN or infinite numbers"),
    (lambda p: p.update(calibration={"temperature": 1e-300}), "temperature 1e-300 is outside [0.01, 100]"),
    (lambda p: p.update(labels=[1, None, {"a": 1}]), "labels are not all non-empty, printable strings"),
    (lambda p: p.update(labels=["English", "English", "Italian"]), "its labels repeat"),
    (lambda p: p.update(labels=["English", "", "Italian"]), "labels are not all non-empty"),
    (lambda p: p.update(alphabet="a" * len(p["alphabet"])), "its alphabet repeats letters"),
    (lambda p: p.update(train_config=[]), "its train_config is not a table"),
    (lambda p: p["train_config"].update(seed=2**70), "its training seed is not a whole number"),
])
def test_hostile_contents_are_refused_in_one_line(trained, tmp_path, change, message):
    data, checkpoint = trained
    path = hostile.mutated(checkpoint, tmp_path / "bad.pt", change)
    refused(run("predict", "Jones", "--json", "--checkpoint", path), message)
    refused(run("evaluate", "--data", data, "--checkpoint", path), message)


def test_finite_weights_whose_outputs_overflow_never_print_nan(trained, tmp_path):
    _, checkpoint = trained
    path = hostile.mutated(checkpoint, tmp_path / "huge.pt", lambda p: p["model"]["head.weight"].fill_(3e38))
    result = refused(run("predict", "Jones", "--json", "--checkpoint", path), "its outputs are not finite numbers")
    assert "NaN" not in result.stdout and "nan" not in result.stdout


def test_a_zip_bomb_is_refused_before_it_inflates(trained, tmp_path):
    _, checkpoint = trained
    bomb = hostile.zip_bomb(checkpoint, tmp_path / "bomb.pt", inflated=64 << 20)
    assert bomb.stat().st_size < 1 << 20
    refused(run("predict", "Jones", "--checkpoint", bomb), "declares 67,108,864 bytes, its tensor needs")


def test_the_tensor_bytes_of_a_checkpoint_are_capped(trained, monkeypatch):
    _, checkpoint = trained
    monkeypatch.setattr(archive, "MAX_TENSOR_BYTES", 10_000)
    refused(run("predict", "Jones", "--checkpoint", checkpoint, "--backend", "torch"),
            "more than the 10,000 charclf loads")


def test_train_refuses_a_model_too_big_to_save(trained, tmp_path):
    data, _ = trained
    refused(run("train", "--data", data, "--hidden-size", "4096", "--num-layers", "16", "--out", tmp_path / "m.pt"),
            "GiB of weights, more than the 1 GiB")


@pytest.mark.parametrize("make, message", [
    (lambda good, path: hostile.png(path), "is not a charclf checkpoint (not a zip archive"),
    (lambda good, path: path.write_text("Smith\nJones\n"), "is not a charclf checkpoint (not a zip archive"),
    (lambda good, path: path.write_bytes(bytes(1 << 20)), "is not a charclf checkpoint (not a zip archive"),
    (lambda good, path: path.write_bytes(b""), "is not a charclf checkpoint (an empty file"),
    (lambda good, path: hostile.raw_pickle(good, path), "is not a charclf checkpoint (a plain pickle"),
    (lambda good, path: path.write_bytes(good.read_bytes()[:2000]), "is a damaged or truncated checkpoint"),
    (lambda good, path: hostile.sparse_weights(good, path), "_rebuild_sparse_tensor, which a charclf checkpoint never"),
    (lambda good, path: hostile.code_running_pickle(path, path.parent / "pwned"), "would run code when loaded"),
])
def test_files_that_are_not_checkpoints_say_what_they_are(trained, tmp_path, make, message):
    _, checkpoint = trained
    path = tmp_path / "x.pt"
    make(checkpoint, path)
    result = refused(run("predict", "Jones", "--checkpoint", path), message)
    assert "weights_only" not in result.stderr and "Warning" not in result.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("what, message", [("/dev/zero", "/dev/zero is a device"), ("fifo", "is a pipe")])
def test_devices_and_pipes_are_not_read(tmp_path, what, message):
    if what == "fifo":
        what = tmp_path / "fifo.pt"
        os.mkfifo(what)
    refused(run("predict", "Jones", "--checkpoint", what), message)


def test_a_hostile_training_state_is_refused_without_advice_to_load_it_unsafely(trained, tmp_path):
    data, checkpoint = trained
    out = tmp_path / "m.pt"
    out.write_bytes(checkpoint.read_bytes())
    hostile.code_running_pickle(tmp_path / "m.state.pt", tmp_path / "pwned")
    result = refused(run("train", "--data", data, "--out", out, "--resume"), "would run code when loaded")
    assert "weights_only" not in result.stderr and not (tmp_path / "pwned").exists()


# --- names and options ---------------------------------------------------------------------


def test_a_name_too_long_is_an_error_of_its_own_line(trained, tmp_path):
    _, checkpoint = trained
    names = tmp_path / "names.txt"
    names.write_text("Jones\n" + "x" * 3_000_000 + "\nSato\n")
    result = run("predict", "--checkpoint", checkpoint, "--file", names)
    assert result.exit_code == 1
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["Jones", "Sato"]
    assert "line 2 is longer than 1000 characters" in result.stderr and "1 of 3 lines" in result.stderr
    result = run("predict", "--checkpoint", checkpoint, "x" * 1001, "Jones")
    assert result.exit_code == 1 and "longer than 1000 characters" in result.stderr
    assert result.stdout.split()[0] == "Jones"


def test_training_data_with_a_name_too_long_is_refused(trained, tmp_path):
    data, _ = trained
    copy = tmp_path / "names"
    copy.mkdir()
    for path in data.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    with open(copy / "English.txt", "a") as f:
        f.write("y" * 1001 + "\n")
    refused(run("train", "--data", copy, *SMALL, "--out", tmp_path / "m.pt"), "English.txt, line 9: the name is longer")


def test_predict_from_a_closed_stdin(trained):
    _, checkpoint = trained
    result = subprocess.run(["bash", "-c", f'"{sys.executable}" -m charclf predict --checkpoint "{checkpoint}" - <&-'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr == "Error: cannot read names from stdin: it is closed\n"


@pytest.mark.parametrize("args", [
    ["predict", "Jones", "--min-confidence", "nan"],
    ["evaluate", "--min-confidence", "nan"],
    ["train", "--lr", "nan"], ["train", "--lr", "inf"], ["train", "--dropout", "nan"],
    ["train", "--epochs", "0"], ["train", "--seed", str(2**70)], ["train", "--seed", "-1"],
    ["train", "--hidden-size", str(10**7)], ["train", "--num-layers", str(10**6)], ["train", "--batch-size", "0"],
])
def test_impossible_numbers_are_usage_errors(args):
    result = run(*args)
    # predict's options are worded as at every door (charclf.predict.options); the others as click words them.
    expected = ("--min-confidence must be a number from 0 to 1, got nan" if "--min-confidence" in args
                else "Invalid value")
    assert result.exit_code == 2 and expected in result.stderr, result.output


def test_train_with_the_data_or_home_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARCLF_DATA", str(tmp_path / "nothing"))
    refused(run("train", *SMALL), "no dataset folder at")
    monkeypatch.setenv("CHARCLF_DATA", str(Path(__file__).parent))  # a folder, but no <Label>.txt in it
    refused(run("train", *SMALL), "no <Label>.txt files")
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CHARCLF_HOME", str(blocker / "home"))  # below a file: cannot be made
    monkeypatch.delenv("CHARCLF_DATA")
    data = tmp_path / "names"
    data.mkdir()
    for label, names in TINY.items():
        (data / f"{label}.txt").write_text("\n".join(names) + "\n")
    refused(run("train", "--data", data, *SMALL), "cannot write to")


def test_fetch_refuses_a_download_far_too_big(tmp_path):
    huge = tmp_path / "huge.zip"
    with open(huge, "wb") as f:
        f.truncate(3 << 30)  # sparse: takes no disk
    refused(run("data", "fetch", "--dest", tmp_path / "names", "--url", huge.as_uri()), "3,221,225,472 bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.zip"]
