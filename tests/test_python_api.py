"""The Python API settles things as the CLI does: charclf.train finds the dataset as `charclf train`
does, applies a backbone's defaults under only the settings a caller chose, and leaves no folder
behind when it fails; run_memory runs on one thread as `charclf lab memory` does; a missing extra
is one line naming a pip command that works; the CLI's own texts point to nothing a wheel lacks."""

import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.config import ARCH_DEFAULTS, TrainConfig
from charclf.errors import DataError
from charclf.extras import EXTRAS, extra_requirements, install_hint
from charclf.files.checkpoint import load_checkpoint

QUICK = {"hidden_size": 8, "refit": False, "progress": False}


def test_train_reads_the_dataset_from_charclf_data_as_the_cli_does(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CHARCLF_DATA", str(tiny_data))
    result = charclf.train(out=tmp_path / "m.pt", epochs=1, **QUICK)
    assert result.metrics["test"]["n"] == 3
    monkeypatch.delenv("CHARCLF_DATA")
    monkeypatch.chdir(tmp_path)  # no ./data/names here: the CLI's error, and no folder made for --out
    with pytest.raises(DataError, match="charclf data fetch"):
        charclf.train(out=tmp_path / "runs" / "deep" / "m.pt", epochs=1)
    assert not (tmp_path / "runs").exists()


def test_a_failed_run_leaves_no_folder_behind(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="dropout"):
        charclf.train(tiny_data, tmp_path / "runs" / "m.pt", epochs=1, dropout=1.5, **QUICK)
    assert not (tmp_path / "runs").exists()


def test_a_train_config_overrides_only_what_it_sets(tiny_data, tmp_path):
    charclf.train(tiny_data, tmp_path / "a.pt", arch="lstm", config=TrainConfig(epochs=1, seed=1), **QUICK)
    saved = load_checkpoint(tmp_path / "a.pt").train_config
    assert saved["lr"] == ARCH_DEFAULTS["lstm"]["lr"] != TrainConfig().lr  # the LSTM's, not the GRU's
    assert (saved["epochs"], saved["seed"]) == (1, 1)
    charclf.train(tiny_data, tmp_path / "b.pt", arch="lstm", config=TrainConfig(epochs=1), lr=0.01, **QUICK)
    assert load_checkpoint(tmp_path / "b.pt").train_config["lr"] == 0.01  # a keyword: as `train --lr`


def test_run_memory_runs_on_one_thread_by_default():
    from charclf.lab.memory import run_memory
    from charclf.lab.settings import MemoryConfig

    seen, before = [], torch.get_num_threads()
    run_memory(MemoryConfig(distances=(2,), archs=("rnn",), steps=1, check_every=1, test_size=8, gradient_size=4),
               progress=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before


def without(module: str, code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter in which `module` cannot be imported."""
    return subprocess.run([sys.executable, "-c", f"import sys; sys.modules[{module!r}] = None\n{code}"],
                          capture_output=True, text=True)


def test_predict_dataframe_without_pandas_says_what_to_install():
    done = without("pandas", "import charclf\ntry:\n    charclf.predict_dataframe(None, 'name')\n"
                             "except charclf.CharclfError as e:\n"
                             "    print(type(e).__name__, isinstance(e, ImportError), e)")
    assert done.stdout == f"MissingExtra True {install_hint('pandas')}\n", done.stderr


@pytest.mark.parametrize("command", [["explain", "Hinton", "--plot", "x.png", "--no-show"],
                                     ["lab", "memory", "--plot", "x.png", "--no-show"]])
def test_plot_without_matplotlib_is_one_line_before_any_work(command, tmp_path):
    done = without("matplotlib", f"from charclf.cli import main; main({command!r})")
    assert (done.returncode, done.stderr) == (1, f"Error: {install_hint('matplotlib')}\n")


def test_install_hints_name_requirements_pip_can_install_today():
    for module, (_, extra) in EXTRAS.items():
        hint = install_hint(module)
        assert "pip install '" in hint and "charclf[" not in hint, hint
        assert all(f"'{requirement}'" in hint for requirement in extra_requirements(extra, module)), hint
    assert install_hint("matplotlib").endswith("pip install 'matplotlib>=3.6' (the plot extra)")


def test_top_k_has_one_name_and_keeps_the_old_one():
    runner = CliRunner()
    answers = {flag: runner.invoke(main, ["predict", "Jones", flag, "2"]).output for flag in ("-k", "--top-k", "--top")}
    assert len(set(answers.values())) == 1 and answers["-k"].count("0.") == 2, answers
    assert runner.invoke(main, ["explain", "Hinton", "--top-k", "2"]).exit_code == 0


def help_texts(group=main, path=()):
    yield path, CliRunner().invoke(group, [*path, "--help"], terminal_width=200).output
    for name, command in getattr(group, "commands", {}).items():
        yield from help_texts(command, (*path, name)) if hasattr(command, "commands") else \
            [((*path, name), CliRunner().invoke(main, [*path, name, "--help"], terminal_width=200).output)]


def test_help_points_to_nothing_a_wheel_lacks():
    texts = dict(help_texts())
    assert len(texts) > 10 and all("Usage:" in text for text in texts.values())
    pointing = {" ".join(path): text for path, text in texts.items() if "docs/" in text or "--backend" in text
                and "--backend [" not in text}
    assert not pointing, sorted(pointing)


def test_train_says_which_model_predict_now_answers_with(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CHARCLF_HOME", str(tmp_path / "home"))
    args = ["train", "--data", str(tiny_data), "--epochs", "1", "--hidden-size", "8", "--no-refit", "--no-progress"]
    default = CliRunner().invoke(main, args)
    assert default.exit_code == 0, default.output
    model = tmp_path / "home" / "model.pt"
    assert default.output.splitlines()[-1] == (
        "predict, explain and serve now answer with this model; to answer with the shipped one again, "
        f"remove it (rm {model}) or pass --checkpoint")
    other = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "m.pt")])
    last = other.output.splitlines()[-1]
    assert last.startswith(f"predict with it: charclf predict --checkpoint {tmp_path / 'm.pt'}")


def test_shell_completion_works_as_the_readme_says():
    import os

    env = {**os.environ, "_CHARCLF_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-m", "charclf"], env=env, capture_output=True, text=True).stdout
    assert "_charclf_completion" in script and "complete " in script
    env.update(_CHARCLF_COMPLETE="bash_complete", COMP_WORDS="charclf pre", COMP_CWORD="1")
    done = subprocess.run([sys.executable, "-m", "charclf"], env=env, capture_output=True, text=True)
    assert done.stdout.splitlines() == ["plain,predict"], done.stdout


@pytest.mark.parametrize("threads", [0, -1, 10**6, 2.5, "many", True])
def test_load_refuses_a_thread_count_no_backend_can_take(threads):
    # The CLI bounds --threads; the Python API refuses the same values before opening any model.
    with pytest.raises(ValueError, match="threads must be a whole number of threads from 1 to 1024"):
        charclf.load(threads=threads)


@pytest.mark.parametrize("bins", [0, 10**6, 1.5])
def test_evaluate_refuses_a_bin_count_out_of_bounds(bins, tiny_data):
    with pytest.raises(ValueError, match="bins must be a whole number from 1 to 1000"):
        charclf.load().evaluate(tiny_data, bins=bins)
