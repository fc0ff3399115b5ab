"""Without matplotlib (the plot extra) everything but the plots works, and --plot says what to install."""

import subprocess
import sys

from charclf.extras import install_hint

HINT = f"Error: {install_hint('matplotlib')}\n"


def without_matplotlib(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter in which matplotlib cannot be imported."""
    script = f"import sys; sys.modules['matplotlib'] = None; from charclf.cli import main; main({list(args)!r})"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_plot_options_name_the_extra_and_training_still_works(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    done = without_matplotlib("train", "--data", str(tiny_data), "--epochs", "1", "--hidden-size", "8",
                              "--no-progress", "--out", str(ckpt))
    assert done.returncode == 0, done.stderr
    assert ckpt.is_file() and ckpt.with_suffix(".history.json").is_file()
    assert not ckpt.with_suffix(".curves.png").exists() and "curves:" not in done.stdout
    for command in ("evaluate", "calibration", "confusion"):
        done = without_matplotlib(command, "--checkpoint", str(ckpt), "--data", str(tiny_data), "--plot",
                                  "--out", str(tmp_path / "p.png"), "--no-show")
        assert (done.returncode, done.stderr) == (1, HINT), command
    done = without_matplotlib("evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data))
    assert done.returncode == 0 and "accuracy" in done.stdout


def test_compare_without_matplotlib_writes_its_table_and_json(tiny_data, tmp_path):
    done = without_matplotlib("compare", "--data", str(tiny_data), "--archs", "ngram", "--out-dir", str(tmp_path),
                              "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "compare.json").is_file() and not (tmp_path / "compare.png").exists()
    assert f"no curves ({install_hint('matplotlib')})" in done.stdout
