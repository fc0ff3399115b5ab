"""Quiet where it should be: progress bars only on a terminal, -q and -v; --version; the repr."""

import fcntl
import hashlib
import os
import pty
import struct
import subprocess
import sys
import termios
import zipfile
from pathlib import Path

import pytest

import charclf

from tests.test_cli import ok, run

CHARCLF = [sys.executable, "-m", "charclf"]


def on_terminal(args, tmp_path: Path) -> tuple[int, str, str]:
    """Run charclf with stderr on a pseudo-terminal (as in an interactive shell) and stdout in a
    file: (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 0 columns: tqdm draws nothing
    with open(tmp_path / "stdout", "wb") as out:
        process = subprocess.Popen(CHARCLF + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=slave, env={**os.environ, "OMP_NUM_THREADS": "1"})
    os.close(slave)
    shown = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(master)
    code = process.wait(timeout=120)
    return code, (tmp_path / "stdout").read_text(), shown.decode(errors="replace")


def piped(args) -> subprocess.CompletedProcess:
    return subprocess.run(CHARCLF + [str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture
def people(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("id,surname\n" + "".join(f"{i},Rossi\n" for i in range(50)), encoding="utf-8")
    return path


def test_predict_csv_shows_progress_only_on_a_terminal(people, tmp_path):
    code, out, shown = on_terminal(["predict", "--csv", people, "--column", "surname"], tmp_path)
    assert code == 0 and len(out.splitlines()) == 51
    assert "predicting" in shown and "B/s" in shown  # the bar, in bytes read
    code, out, shown = on_terminal(["predict", "--csv", people, "--column", "surname", "-q"], tmp_path)
    assert code == 0 and len(out.splitlines()) == 51 and shown == ""
    result = piped(["predict", "--csv", people, "--column", "surname"])
    assert result.returncode == 0 and result.stderr == ""  # stderr a pipe: no bar, nothing to say
    result = piped(["predict", "--csv", people, "--column", "surname", "--out", tmp_path / "o.csv", "-q"])
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    result = piped(["predict", "--csv", people, "--column", "surname", "-v"])
    assert "wrote 50 rows to stdout" in result.stderr and "\r" not in result.stderr


def test_predict_file_progress_and_verbose(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Rossi\nTanaka\nSmith\n", encoding="utf-8")
    code, out, shown = on_terminal(["predict", "--file", names], tmp_path)
    assert len(out.splitlines()) == 3 and "predicting" in shown
    result = piped(["predict", "--file", names, "-v"])
    assert "predicted 3 lines in" in result.stderr and "predicting" not in result.stderr
    assert "predicting" not in on_terminal(["predict", "--file", names, "-q"], tmp_path)[2]


def test_train_progress_and_log_lines(tiny_data, tmp_path):
    args = ["train", "--data", tiny_data, "--epochs", "1", "--hidden-size", "8", "--out", tmp_path / "m.pt"]
    code, out, shown = on_terminal(args, tmp_path)
    assert code == 0 and "saved gru model" in out
    assert "epochs:" in shown and "epoch   1/1" in shown  # the bar and the log line
    result = piped(args)
    assert result.returncode == 0 and "epoch   1/1" in result.stderr
    assert "epochs:" not in result.stderr and "\r" not in result.stderr  # a log file gets lines, no bars
    code, out, shown = on_terminal(args + ["-q"], tmp_path)
    assert code == 0 and "saved gru model" in out
    # Quiet: no bar, no progress lines; warnings (this tiny set's small validation split) stay.
    assert "epochs:" not in shown and "epoch   1/1" not in shown and "training gru" not in shown
    assert "warning: the validation split has only" in shown


def test_verbose_and_quiet_through_click(tiny_data, tmp_path):
    result = ok("train", "--data", tiny_data, "--epochs", "1", "--hidden-size", "8", "-v", "--out", tmp_path / "m.pt")
    assert "settings: arch=gru, hidden_size=8," in result.stderr and "epochs=1" in result.stderr
    result = run("train", "-q", "-v")
    assert result.exit_code == 2 and "exclude each other" in result.stderr
    for command in (["train"], ["compare"], ["predict"], ["data", "fetch"]):
        text = ok(*command, "--help").stdout
        assert "-q, --quiet" in text and "-v, --verbose" in text


@pytest.fixture
def archive(tmp_path) -> tuple[str, Path]:
    """(file:// address of a names archive, its checksum manifest)."""
    files = {"English.txt": b"Smith\nJones\n", "Italian.txt": b"Rossi\nRusso\n"}
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"data/names/{name}", data)
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items()))
    return path.as_uri(), manifest


def test_data_fetch_progress_only_on_a_terminal(archive, tmp_path):
    url, manifest = archive
    fetch = ["data", "fetch", "--url", url, "--manifest", manifest, "--dest"]
    code, out, shown = on_terminal(fetch + [tmp_path / "a"], tmp_path)
    assert code == 0 and "verified and installed 2 files" in out and "data.zip" in shown
    result = piped(fetch + [tmp_path / "b"])
    assert result.returncode == 0 and "verified and installed" in result.stdout and result.stderr == ""
    code, out, shown = on_terminal(fetch + [tmp_path / "c", "-q"], tmp_path)
    assert code == 0 and "verified and installed" in out and shown == ""
    result = piped(fetch + [tmp_path / "d", "-v"])
    assert f"downloading {url}" in result.stderr and "English.txt" in result.stderr


def test_version():
    from importlib.metadata import version

    assert charclf.__version__ == version("charclf")
    assert ok("--version").stdout.strip() == f"charclf, version {charclf.__version__}"
    assert piped(["--version"]).stdout.strip() == f"charclf, version {charclf.__version__}"


def test_classifier_repr():
    clf = charclf.load(device="cpu")
    text = repr(clf)
    assert text.startswith("<Classifier gru (bidirectional, hidden 128 x 1 layer(s), embedding 48")
    assert "194,946 parameters, 18 labels" in text and f"temperature {clf.temperature:.4f}" in text
    assert "on cpu" in text and str(clf.path) in text
