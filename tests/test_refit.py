"""Refitting (charclf.training.refit): a second process trains the same network on train + validation,
and its weights at the epoch the first run chose are saved, with the first run's validation
scores, temperature and label sets."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.data.batches import open_source, with_validation_in_training
from charclf.files.checkpoint import load_checkpoint
from charclf.names.text import DEFAULT_ALPHABET
from charclf.training import refit

from tests.conftest import write_made_up_languages

SMALL = ["--hidden-size", "16", "--spelling-rank", "8", "--batch-size", "32", "--no-progress"]


@pytest.fixture
def names(tmp_path) -> Path:
    """Three made-up languages, 150 names each: a validation split of about 45 names."""
    return write_made_up_languages(tmp_path / "names", per_label=150, seed=1, longest=10)


@pytest.fixture
def table(names, tmp_path) -> Path:
    path = tmp_path / "names.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "label"])
        for file in sorted(names.glob("*.txt")):
            writer.writerows([name, file.stem] for name in file.read_text().split())
    return path


def train(data, out, *extra):
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--epochs", "3", *SMALL, "--out", str(out),
                                       *extra])
    assert result.exit_code == 0, result.output
    return result, load_checkpoint(out)


def evaluated(checkpoint, data, split="test"):
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data),
                                       "--split", split, "--json"])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("kind", ["folder", "table"])
def test_the_widened_source_trains_on_every_train_and_validation_pair_once(kind, names, table):
    source = open_source(names if kind == "folder" else table, DEFAULT_ALPHABET, seed=0)
    widened = with_validation_in_training(source)
    expected = sorted(zip(*source.held["train"])) if kind == "folder" else None
    pairs = sorted((name, label) for batch, targets in widened.epoch(1, 16, True)
                   for name, label in zip(batch, targets.tolist()))
    assert len(pairs) == len(set(pairs)) == widened.sizes["train"] == source.sizes["train"] + source.sizes["val"]
    assert widened.n_batches(16) == len(list(widened.epoch(2, 16, True)))
    assert set(zip(*source.held["val"])) <= set(pairs)
    if expected is not None:
        assert set(expected) <= set(pairs)
    assert sum(widened.train_counts) == widened.sizes["train"]
    assert widened.held["val"] == source.held["val"] and widened.held["test"] == source.held["test"]
    assert source.sizes["train"] == sum(source.train_counts)  # the original is unchanged
    assert len(list(source.epoch(1, 16, True))) == source.n_batches(16)


def test_train_saves_the_refit_with_the_first_runs_validation_scores_and_temperature(names, tmp_path):
    result, refitted = train(names, tmp_path / "refit.pt")
    _, alone = train(names, tmp_path / "alone.pt", "--no-refit")
    m, a = refitted.metrics, alone.metrics
    assert m["refit"]["trained_on"] == "train+val" and "refit" not in a
    sizes = refitted.train_config["split_sizes"]
    assert m["refit"]["pairs"] == sizes["train"] + sizes["val"] and sizes["val"] >= 30
    # The first run is exactly the run without refit (same seed): its scores, epoch and temperature.
    assert m["val"] == a["val"] and m["best_epoch"] == a["best_epoch"]
    assert m["first_run"]["test"] == a["test"]
    assert refitted.calibration["temperature"] == alone.calibration["temperature"]
    assert refitted.calibration["conformal"] == alone.calibration["conformal"]
    # The saved weights are another network's: the refit's, whose test scores are recorded.
    assert any(not torch.equal(refitted.state_dict[k], alone.state_dict[k]) for k in alone.state_dict)
    assert json.loads(evaluated(tmp_path / "refit.pt", names).stdout)["accuracy"] == m["test"]["accuracy"]
    assert "refit:" in result.stdout and "trained on train alone" in result.stdout
    assert "refit: a second process" in result.stderr


def test_evaluating_a_refit_on_validation_warns_that_it_trained_on_those_names(names, tmp_path):
    train(names, tmp_path / "refit.pt")
    assert "trained on the validation names too" in evaluated(tmp_path / "refit.pt", names, "val").stderr
    assert "trained on the validation names" not in evaluated(tmp_path / "refit.pt", names, "test").stderr


def test_a_csv_table_is_refitted_on_its_validation_rows_too(table, tmp_path):
    _, refitted = train(table, tmp_path / "refit.pt")
    sizes = refitted.train_config["split_sizes"]
    assert refitted.metrics["refit"]["pairs"] == sizes["train"] + sizes["val"]


def test_no_refit_on_a_tiny_validation_split(tiny_data, tmp_path):
    result, checkpoint = train(tiny_data, tmp_path / "m.pt")
    assert "refit" not in checkpoint.metrics
    assert "no refit on train + validation: the validation split has fewer than 30 names" in result.stderr


def test_a_failed_refit_saves_the_first_run_with_a_warning(names, tmp_path, monkeypatch):
    real_job = refit.job
    monkeypatch.setattr(refit, "job",
                        lambda run, threads: {**real_job(run, threads), "data_dir": str(tmp_path / "gone")})
    result, checkpoint = train(names, tmp_path / "m.pt")
    assert "warning: the refit on train + validation failed" in result.stderr and "gone" in result.stderr
    assert "refit" not in checkpoint.metrics and "first_run" not in checkpoint.metrics
    _, alone = train(names, tmp_path / "alone.pt", "--no-refit")
    assert all(torch.equal(checkpoint.state_dict[k], alone.state_dict[k]) for k in alone.state_dict)


def test_the_refit_process_ends_when_its_parent_goes(names, tmp_path):
    """Its stdin closing (the parent ended, even by SIGKILL) ends it at once."""
    source = open_source(names, DEFAULT_ALPHABET, seed=0)
    job = {"data_dir": str(names), "alphabet": DEFAULT_ALPHABET, "fingerprint": source.fingerprint,
           "model_config": {"arch": "gru", "n_letters": len(DEFAULT_ALPHABET), "n_classes": 3},
           "train_config": {"epochs": 10_000}, "device": "cpu", "threads": 1}
    process = subprocess.Popen([sys.executable, "-m", "charclf.training.refit_worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(json.dumps(job).encode() + b"\n")
    process.stdin.flush()
    time.sleep(3)
    assert process.poll() is None  # training: 10,000 epochs would take hours
    process.stdin.close()
    assert process.wait(timeout=30) == 3
    assert process.stdout.read() == b""


def refit_processes_of(home: Path) -> list[int]:
    """Live `charclf.training.refit_worker` processes whose environment names this test's CHARCLF_HOME."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if b"charclf.training.refit_worker" in (entry / "cmdline").read_bytes() and \
                    f"CHARCLF_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_ctrl_c_ends_the_refit_with_the_run(names, tmp_path, isolated_home):
    import signal

    out = tmp_path / "m.pt"
    process = subprocess.Popen([sys.executable, "-m", "charclf", "train", "--data", str(names), "--epochs", "500",
                                *SMALL, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out.exists() and refit_processes_of(isolated_home)):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert "refit" not in load_checkpoint(out).metrics  # the first run's best so far
    deadline = time.monotonic() + 10
    while refit_processes_of(isolated_home):
        assert time.monotonic() < deadline, "the refit outlived its run"
        time.sleep(0.1)


def test_refit_is_on_by_default_and_can_be_turned_off():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert "--refit / --no-refit" in result.output and "[default: refit]" in " ".join(result.output.split())


def test_a_refit_that_cannot_start_trains_on_train_alone_with_a_warning(names, tmp_path, monkeypatch):
    monkeypatch.setattr(refit.sys, "executable", str(tmp_path / "no-such-python"))
    result, checkpoint = train(names, tmp_path / "m.pt")
    assert "warning: could not start the refit" in result.stderr and "Traceback" not in result.output
    assert "refit" not in checkpoint.metrics
