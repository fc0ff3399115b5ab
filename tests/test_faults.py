"""Training under faults, with real processes: SIGKILL then --resume, Ctrl-C, divergence."""

import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.checkpoint import load_checkpoint
from charclf.training.train import load_training_state, state_path

from tests.conftest import write_made_up_languages

SMALL = ["--hidden-size", "16", "--batch-size", "32", "--no-progress"]


@pytest.fixture
def synthetic_data(tmp_path):
    """Three made-up 'languages' with 400 names each: epochs long enough to kill one mid-run."""
    return write_made_up_languages(tmp_path / "synthetic", per_label=400, seed=0, longest=12)


def charclf(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "charclf", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_epoch(out, epoch, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if state_path(out).exists():
            try:
                if torch.load(state_path(out), weights_only=True)["epoch"] >= epoch:
                    return
            except Exception:
                pass  # replaced while we read it
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"training did not reach epoch {epoch} in {timeout} s")


def weights(path):
    return load_checkpoint(path).state_dict


def kill_at_epoch(args, out, epoch: int) -> None:
    """Start `charclf *args --out out`, SIGKILL it once it has saved `epoch`'s state."""
    process = charclf(*args, "--out", out)
    wait_for_epoch(out, epoch, process)
    process.send_signal(signal.SIGKILL)
    process.wait()


def resume_run(args, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "charclf", *map(str, args), "--out", out, "--resume"],
                          capture_output=True, text=True, timeout=300)


def test_sigkill_then_resume_ends_like_an_uninterrupted_run(synthetic_data, tmp_path):
    args = ["train", "--data", synthetic_data, "--epochs", "8", *SMALL]
    straight = tmp_path / "straight.pt"
    assert charclf(*args, "--out", straight).wait(timeout=300) == 0

    killed = tmp_path / "killed.pt"
    kill_at_epoch(args, killed, 3)
    assert load_checkpoint(killed).metrics["best_epoch"] >= 1  # what was saved is loadable

    resumed = resume_run(args, killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch" in resumed.stderr
    a, b = weights(straight), weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert load_checkpoint(killed).metrics["epochs_run"] == 8
    assert not state_path(killed).exists()  # finished: nothing left to resume


def test_sigint_keeps_the_best_checkpoint_and_says_so(synthetic_data, tmp_path):
    out = tmp_path / "m.pt"
    process = charclf("train", "--data", synthetic_data, "--epochs", "200", *SMALL, "--out", out)
    wait_for_epoch(out, 2, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "kept the best checkpoint so far" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    ck = load_checkpoint(out)
    assert "test" in ck.metrics and 2 <= ck.metrics["epochs_run"] < 200
    # The state stays for --resume, which refuses settings other than the run's own.
    assert state_path(out).exists()
    changed = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "5"])
    assert changed.exit_code == 2 and "--epochs 5 differs from its 200" in changed.stderr


def test_a_diverging_run_keeps_the_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "m.pt"
    runner = CliRunner()
    args = ["train", "--data", str(tiny_data), "--epochs", "2", *SMALL, "--out", str(out)]
    assert runner.invoke(main, args).exit_code == 0
    before = out.read_bytes()
    # From the second update on, the weights blow up to inf/NaN, as a far too large learning rate
    # makes them (--lr is bounded, so the option itself cannot ask for one).
    real_step, steps = torch.optim.AdamW.step, []

    def blowing_up(optimizer, *args, **kwargs):
        done = real_step(optimizer, *args, **kwargs)
        steps.append(1)
        if len(steps) > 1:
            with torch.no_grad():
                for group in optimizer.param_groups:
                    for weight in group["params"]:
                        weight.mul_(float("inf"))
        return done

    monkeypatch.setattr(torch.optim.AdamW, "step", blowing_up)
    result = runner.invoke(main, ["train", "--data", str(tiny_data), "--epochs", "3", *SMALL, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "diverged" in result.stderr and "smaller --lr" in result.stderr
    ck = load_checkpoint(out)
    assert all(torch.isfinite(v).all() for v in ck.state_dict.values())
    if "nothing was saved" in result.stderr:
        assert out.read_bytes() == before


def test_resume_refuses_changed_settings_and_missing_state(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--data", str(tiny_data), "--out", str(out), "--resume"])
    assert result.exit_code == 1 and "no training state to resume" in result.stderr
    args = ["train", "--data", str(tiny_data), "--epochs", "1", *SMALL, "--out", str(out)]
    assert runner.invoke(main, args).exit_code == 0
    # A finished run leaves no state behind: resuming it is an error, not a silent retrain.
    assert runner.invoke(main, ["train", "--out", str(out), "--resume"]).exit_code == 1


def test_sigkill_in_the_middle_of_a_save_keeps_a_loadable_checkpoint(synthetic_data, tmp_path):
    """Kill the trainer while a temp file of a save is open: the checkpoint and state stay loadable."""
    out = tmp_path / "m.pt"
    process = charclf("train", "--data", synthetic_data, "--epochs", "100", "--hidden-size", "384",
                      "--batch-size", "512", "--no-progress", "--out", out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if out.exists() and any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            process.send_signal(signal.SIGKILL)
            break
    else:
        process.kill()
        pytest.fail("never saw a save in progress")
    process.wait()
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # killed mid-save indeed
    assert load_checkpoint(out).metrics["best_epoch"] >= 1
    saved_epoch = load_training_state(out)["epoch"]
    # The run goes on from the state that survived.
    process = charclf("train", "--data", synthetic_data, "--out", out, "--resume", "--no-progress")
    wait_for_epoch(out, saved_epoch + 1, process)
    process.kill()
    assert "resuming at epoch" in process.communicate()[1]
