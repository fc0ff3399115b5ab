"""Data-parallel training for real: torchrun starts CPU processes (gloo) on this machine."""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.files.checkpoint import load_checkpoint
from charclf.training.distributed import weights_digest
from charclf.training.train import state_path

from tests.conftest import wait_for_saved_epoch

TINY_MODEL = ["--hidden-size", "8", "--embedding-dim", "8", "--batch-size", "16", "--no-progress"]
TIMEOUT = 180  # a run takes seconds; this only stops a hang from stalling the suite
# A traceback frame in charclf's own code. Only the package folder: torch's frames sit under the
# checkout too when the virtual environment lives there (a checkout named charclf included).
OUR_FRAME = re.compile(r'File "' + re.escape(str(Path(charclf.__file__).parent)) + r"[/\\]")
# A deprecation warning that charclf's own code set off in a process torchrun started (pytest's
# filter, which fails the test on it in this process, does not reach those).
OUR_WARNING = re.compile(re.escape(str(Path(charclf.__file__).parent))
                         + r"[/\\][^:\n]*:\d+: (Deprecation|Future)Warning")


@pytest.fixture
def names_csv(tmp_path) -> Path:
    """Three made-up 'languages', 100 names each, as one shuffled name,label CSV."""
    rng = random.Random(1)
    rows = []
    for label, letters in {"Aish": "aeiou", "Bork": "bkrtz", "Clem": "lmnsy"}.items():
        names = {"".join(rng.choice(letters + "aeh") for _ in range(rng.randint(3, 12))).title() for _ in range(100)}
        rows += [(name, label) for name in sorted(names)]
    rng.shuffle(rows)
    path = tmp_path / "names.csv"
    path.write_text("name,label\n" + "".join(f"{n},{label}\n" for n, label in rows))
    return path


@pytest.fixture
def folder(names_csv, tmp_path) -> Path:
    """The same names as a folder of <Label>.txt files."""
    out = tmp_path / "folder"
    out.mkdir()
    by_label = {}
    for line in names_csv.read_text().splitlines()[1:]:
        name, label = line.split(",")
        by_label.setdefault(label, []).append(name)
    for label, names in by_label.items():
        (out / f"{label}.txt").write_text("\n".join(names) + "\n")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, env=None, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)


def finish(process: subprocess.Popen, timeout: float = TIMEOUT) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"torchrun still running after {timeout} s: {process.communicate()}")
    return process.returncode, out, err


def check_ddp_checkpoint(out: Path, stdout: str, stderr: str) -> None:
    """One set of files, written by rank 0 only, from ranks that ended with identical weights."""
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.stem)) == [
        f"{out.stem}.curves.png", f"{out.stem}.history.json", f"{out.stem}.onnx", f"{out.stem}.pt"]
    assert not state_path(out).exists() and not list(out.parent.glob(".*.tmp"))
    assert stdout.count("saved gru model to") == 1  # rank 0 reports for both
    assert "training gru" in stderr and "on 2 processes (cpu)" in stderr
    assert not OUR_WARNING.search(stderr), stderr
    # Every rank hashed its weights; rank 0 compared all the hashes, and they match the file.
    match = re.search(r"all 2 processes hold identical weights \(sha256: last epoch (\w+), checkpoint (\w+)\)", stderr)
    assert match, stderr
    ck = load_checkpoint(out)
    assert weights_digest(ck.state_dict) == match[2]
    assert ck.train_config["processes"] == 2 and ck.metrics["epochs_run"] == 2
    assert [row["epoch"] for row in json.loads(out.with_suffix(".history.json").read_text())] == [1, 2]


def check_the_cli_reads_it(out: Path, data: Path) -> None:
    predicted = subprocess.run([sys.executable, "-m", "charclf", "predict", "Bokrat", "Aiea", "--json",
                                "--checkpoint", str(out)], capture_output=True, text=True, timeout=TIMEOUT)
    assert predicted.returncode == 0, predicted.stderr
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["Bokrat", "Aiea"] and all(len(r["predictions"]) == 3 for r in rows)
    evaluated = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(out), "--data", str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["same_data_as_training"] and report["n"] == load_checkpoint(out).metrics["test"]["n"]


@pytest.mark.parametrize("members", [1, 2])
def test_torchrun_two_processes_train_one_model(folder, tmp_path, members):
    out = tmp_path / "runs" / "ddp.pt"
    code, stdout, stderr = finish(torchrun("--standalone", "--nproc_per_node", "2", "-m", "charclf", "train",
                                           "--data", folder, "--epochs", "2", *TINY_MODEL, "--members", members,
                                           "--out", out))
    assert code == 0, stderr
    check_ddp_checkpoint(out, stdout, stderr)
    assert load_checkpoint(out).model_config.members == members  # an ensemble trains data-parallel too
    check_the_cli_reads_it(out, folder)


def test_two_nodes_on_localhost_stream_a_csv(names_csv, tmp_path):
    """Two torchrun agents, one process each, meeting through a c10d rendezvous like two hosts."""
    out = tmp_path / "nodes.pt"
    port = free_port()
    nodes = [torchrun("--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
                      "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "charclf-test", "-m", "charclf", "train",
                      "--data", names_csv, "--epochs", "2", *TINY_MODEL, "--out", out) for _ in range(2)]
    results = [finish(node) for node in nodes]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    stdout, stderr = "".join(r[1] for r in results), "".join(r[2] for r in results)
    check_ddp_checkpoint(out, stdout, stderr)
    counts = {label: names_csv.read_text().count(f",{label}\n") for label in ("Aish", "Bork", "Clem")}
    assert f"rows per label: Aish {counts['Aish']}, Bork {counts['Bork']}, Clem {counts['Clem']}" in stderr
    check_the_cli_reads_it(out, names_csv)


def worker_pids(launcher: subprocess.Popen) -> dict[int, int]:
    """{local rank: pid} of the processes torchrun started (Linux: read from /proc)."""
    pids = {}
    for task in Path(f"/proc/{launcher.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            for entry in environ:
                if entry.startswith(b"LOCAL_RANK="):
                    pids[int(entry.split(b"=")[1])] = int(child)
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
def test_a_killed_rank_fails_the_whole_run_quickly(folder, tmp_path):
    out = tmp_path / "m.pt"
    launcher = torchrun("--standalone", "--nproc_per_node", "2", "-m", "charclf", "train", "--data", folder,
                        "--epochs", "1000", *TINY_MODEL, "--out", out)
    deadline = time.monotonic() + TIMEOUT
    while not (out.exists() and state_path(out).exists()):  # rank 0 saved an epoch: training is under way
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.1)
    pids = worker_pids(launcher)
    assert sorted(pids) == [0, 1]
    os.kill(pids[1], signal.SIGKILL)
    killed = time.monotonic()
    code, stdout, stderr = finish(launcher, timeout=60)
    assert code != 0 and time.monotonic() - killed < 60
    assert "exitcode  : -9" in stderr and "rank      : 1" in stderr  # torchrun names the culprit
    assert "saved gru model" not in stdout
    # Rank 0 either saw its peer vanish (one line, no traceback of ours) or was stopped by torchrun.
    assert not OUR_FRAME.search(stderr)
    load_checkpoint(out)  # what rank 0 saved is intact
    # Its state resumes only with as many processes as it trained with (the schedule depends on it).
    resumed = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--no-progress"])
    assert resumed.exit_code == 1 and "trained in 2 process(es), this one has 1" in resumed.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
def test_a_stalled_rank_times_out_with_one_line_instead_of_hanging(folder, tmp_path):
    out, log = tmp_path / "m.pt", tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        launcher = torchrun("--standalone", "--nproc_per_node", "2", "-m", "charclf", "train", "--data", folder,
                            "--epochs", "1000", *TINY_MODEL, "--out", out, env={"CHARCLF_DIST_TIMEOUT": "3"},
                            stderr=stderr)
    deadline = time.monotonic() + TIMEOUT
    while not state_path(out).exists():
        assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    stalled = worker_pids(launcher)[1]
    os.kill(stalled, signal.SIGSTOP)  # alive but silent: its peer must not wait for it forever
    try:
        expected = "Error: [rank 0] lost the other processes while"
        while expected not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        os.kill(stalled, signal.SIGCONT)  # lets torchrun's SIGTERM end it at once
    code, _, _ = finish(launcher, timeout=60)
    assert code != 0
    assert "timed out after 3 s" in log.read_text() and not OUR_FRAME.search(log.read_text())


def test_a_data_error_under_torchrun_is_one_line_per_rank(tmp_path):
    """Both ranks fail alike; torchrun stops the other as soon as one exits, so the slower rank may be
    stopped before it writes its line. Each rank that reports writes exactly one line."""
    code, stdout, stderr = finish(torchrun("--standalone", "--nproc_per_node", "2", "-m", "charclf", "train",
                                           "--data", tmp_path / "missing", "--out", tmp_path / "m.pt"))
    assert code != 0
    counts = [stderr.count(f"Error: [rank {rank}] no dataset folder at {tmp_path / 'missing'}") for rank in (0, 1)]
    assert sum(counts) >= 1 and max(counts) == 1, stderr
    assert not OUR_FRAME.search(stderr)  # torchrun's own summary only
    assert not (tmp_path / "m.pt").exists()


def test_single_process_output_is_unchanged_by_the_distributed_code(folder, tmp_path):
    """Without torchrun: no process group, no rank prefix, the same files; a stray RANK (set by
    some other tool) without the rest of torchrun's variables does not make this process silent."""
    stray = {"RANK": "3", "WORLD_SIZE": "4"}
    result = CliRunner().invoke(main, ["train", "--data", str(folder), "--epochs", "1", *TINY_MODEL,
                                       "--out", str(tmp_path / "m.pt")], env=stray)
    assert result.exit_code == 0, result.output
    assert "training gru" in result.stderr and "processes" not in result.stderr and "saved gru" in result.stdout
    assert load_checkpoint(tmp_path / "m.pt").train_config["processes"] == 1
    error = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "missing")], env=stray)
    assert error.exit_code == 1 and error.stderr.startswith("Error: no dataset folder")


def test_a_stopped_two_process_run_resumes_to_the_same_weights(tmp_path):
    """torchrun stopped (SIGTERM, as a preempted job) after epoch 2; --resume with 2 processes again
    ends with the weights of an uninterrupted 2-process run."""
    rng = random.Random(2)
    rows = [("".join(rng.choice(letters + "aeh") for _ in range(rng.randint(3, 12))).title(), label)
            for label, letters in {"Aish": "aeiou", "Bork": "bkrtz", "Clem": "lmnsy"}.items() for _ in range(1500)]
    rng.shuffle(rows)
    data = tmp_path / "d.csv"
    data.write_text("".join(f"{n},{label}\n" for n, label in rows))
    args = ["--standalone", "--nproc_per_node", "2", "-m", "charclf", "train", "--data", data, "--epochs", "5",
            "--hidden-size", "16", "--batch-size", "32", "--no-progress"]
    straight, stopped = tmp_path / "straight.pt", tmp_path / "stopped.pt"
    assert finish(torchrun(*args, "--out", straight))[0] == 0
    launcher = torchrun(*args, "--out", stopped)
    wait_for_saved_epoch(launcher, stopped, 2, TIMEOUT)
    launcher.send_signal(signal.SIGTERM)
    assert finish(launcher)[0] != 0
    code, stdout, stderr = finish(torchrun(*args, "--out", stopped, "--resume"))
    assert code == 0, stderr
    assert "resuming at epoch" in stderr and stdout.count("saved gru model") == 1
    a, b = load_checkpoint(straight).state_dict, load_checkpoint(stopped).state_dict
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
