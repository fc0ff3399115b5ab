"""scripts/benchmark.py, the one benchmark driver: every mode's --help, its usage errors, and the
cheap modes end to end on tiny inputs (each in a subprocess, as people run it)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "scripts" / "benchmark.py"
MODES = ("accuracy", "onnx", "precision", "gpu", "batch", "startup", "threads", "scale", "engines", "scripts", "serve",
         "load")


def run_driver(*args: str, home: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["CHARCLF_HOME"] = str(home)  # an empty home: the shipped model, never a user's
    return subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def test_help_lists_every_mode():
    done = run_driver("--help")
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^ {4}(\w+)", done.stdout, re.M)
    assert listed == list(MODES)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_documents_itself(mode):
    done = run_driver(mode, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: benchmark.py {mode}")
    assert f"python scripts/benchmark.py {mode}" in done.stdout  # the module docstring: how to run it
    hidden = r"--(?:child|seed|workdir|worker|csv|result-dir)(?![\w-])"  # for the processes a mode starts
    assert not re.search(rf"^ +{hidden}|\[{hidden}", done.stdout, re.M)


def test_help_imports_no_mode_and_no_torch():
    code = (f"import runpy, sys\nsys.argv = ['benchmark.py', 'accuracy', '--help']\n"
            f"try:\n    runpy.run_path({str(DRIVER)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('benchmarks.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("args, message", [
    (["accuracy", "--only", "gru,nope"], "unknown system(s) nope"),
    (["accuracy", "--seeds", "0,x"], "'x' is not a whole number"),
    (["serve", "--clients", "5000"], "--clients"),
    (["nope"], "invalid choice"),
])
def test_usage_errors_exit_2(args, message, tmp_path):
    done = run_driver(*args, home=tmp_path / "home")
    assert done.returncode == 2
    assert message in done.stderr


def test_startup_writes_its_table(tmp_path):
    out = tmp_path / "startup.md"
    done = run_driver("startup", "--runs", "1", "--out", str(out), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert text == done.stdout.rstrip("\n") + "\n"
    assert "`python scripts/benchmark.py startup --runs 1`" in text
    assert "| command | best s | median s | median / import torch |\n|---|---:|---:|---:|\n" in text
    rows = re.findall(r"^\| `(.+?)` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", text, re.M)
    assert [row[0] for row in rows] == ['python -c "pass"', 'python -c "import torch"', "charclf --help",
                                        "charclf predict Jones"]
    assert rows[1][3] == "1.00"  # import torch is the yardstick


def test_batch_marks_charclfs_choice(real_data, tmp_path):
    import torch

    from charclf.predict.inference import network_batch

    done = run_driver("batch", "--rounds", "1", "--names", "300", "--data", str(real_data), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("300 names, 1 rounds,")
    rows = re.findall(r"^\| (\d) \| ([\d,]+)( \(charclf's choice\))? \| ([\d,]+) \| ([\d,]+) \|$", done.stdout, re.M)
    assert {int(threads) for threads, *_ in rows} == {1, 2}
    chosen = {int(batch.replace(",", "")) for _, batch, mark, *_ in rows if mark}
    assert chosen == {network_batch(torch.device("cpu"))}


def tiny_names(real_data: Path, folder: Path, labels=("English", "Italian", "Japanese", "Russian"), n=80) -> Path:
    """A few real languages, the first n names of each."""
    folder.mkdir()
    for label in labels:
        lines = (real_data / f"{label}.txt").read_text(encoding="utf-8").splitlines()[:n]
        (folder / f"{label}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_rate_within_start_up_noise_is_not_timed():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from benchmarks.common import rate_text, startup_excluded_rate
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert startup_excluded_rate(10_001, 3.0, 1.0) == pytest.approx(5_000)  # 10,000 names in 2 s beyond start-up
    assert startup_excluded_rate(10_001, 1.05, 1.0) is None  # 5% beyond a one-name run: noise
    assert startup_excluded_rate(10_001, 0.9, 1.0) is None  # faster than one name: noise
    assert rate_text(5_000.4) == "5,000" and rate_text(None) == "-"


@pytest.mark.slow
def test_accuracy_quick_runs_its_children(real_data, tmp_path):
    data, out = tiny_names(real_data, tmp_path / "names"), tmp_path / "report" / "bench.md"
    done = run_driver("accuracy", "--quick", "--only", "ngram,majority", "--data", str(data), "--out", str(out),
                      home=tmp_path / "home", timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert record["systems"] == ["ngram", "majority"] and record["seeds"] == [0]
    ngram = record["results"]["0"]["ngram"]
    assert ngram["resolved"]["model"]["arch"] == "ngram"
    rate = ngram["cli_names_per_second"]  # 10,000 n-gram names take about start-up's noise: may be untimed
    assert rate is None or rate > 0
    report = out.read_text(encoding="utf-8")
    assert report.startswith("# charclf benchmark (QUICK SMOKE TEST")
    assert "cut 80/10/10" in report and report.rstrip().endswith("<!-- sections written by other scripts -->")


@pytest.mark.slow
def test_scale_runs_the_driver_under_torchrun(real_data, tmp_path):
    data, work = tiny_names(real_data, tmp_path / "names"), tmp_path / "scale"
    done = run_driver("scale", "--data", str(data), "--lines", "2000", "--procs", "1", "--max-steps", "2",
                      "--work-dir", str(work), home=tmp_path / "home", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "`python scripts/benchmark.py scale --lines 2000 --procs 1 --max-steps 2`" in done.stdout
    assert re.search(r"^\| 2,000 \| \d+ \| 1 \| [\d.]+ \([\d,]+\) \| [\d,]+ \| [\d,]+ \| \d+ \|$", done.stdout, re.M)
    assert json.loads((work / "result-2000-1" / "rank0.json").read_text())["steps"] == 2


def test_gpu_mode_rehearses_on_the_cpu(real_data, tmp_path):
    """The GPU timings' every step (train each backbone in float32 and bfloat16 autocast, predict,
    the table) on the CPU, so the GPU run cannot fail on the script itself."""
    data, table = tiny_names(real_data, tmp_path / "names"), tmp_path / "gpu.md"
    done = run_driver("gpu", "--device", "cpu", "--quick", "--data", str(data), "--markdown", str(table),
                      home=tmp_path / "home", timeout=300)
    assert done.returncode == 0, done.stderr
    section = table.read_text(encoding="utf-8")
    assert "Measured on **CPU" in section and "(a smoke test, not a measurement)" in section
    rows = [line for line in section.splitlines() if line.startswith(("| gru", "| lstm", "| rnn"))]
    assert [row.split("|")[1:3] for row in rows] == [[f" {arch} ", f" {precision} "] for arch in ("gru", "lstm", "rnn")
                                                     for precision in ("float32", "bfloat16")]


def test_gpu_check_says_in_one_line_that_no_gpu_is_present(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(tmp_path / "out")}
    env.pop("GPU_CHECK_DEVICE", None)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("gpu_check: no CUDA GPU present")
    assert (tmp_path / "out" / "gpu_check.log").read_text(encoding="utf-8") == done.stdout


def test_too_few_lines_for_the_names_asked_is_one_line(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from benchmarks.common import distinct_names
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert len(set(distinct_names(["Jones", "Rossi", "Nakamura"], 4))) == 4
    with pytest.raises(SystemExit, match="too few different names for 100"):
        distinct_names(["Jones", "Rossi", "Nakamura"], 100)
