#!/usr/bin/env python
"""Benchmark charclf against its peers on one machine, in one run, on charclf's own split.

Systems (names for --only), in this order:

  gru              charclf's default model, the bidirectional GRU
  lstm, rnn        charclf's other recurrent backbones
  ngram            charclf --model ngram: its n-gram baseline, no network
                   (all four: charclf.train() with charclf.config.defaults_for(arch, seed=seed), nothing else)
  logreg           TF-IDF character 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn,
                   fitted on the train split
  logreg-trainval  the same, fitted on train + validation (it does no model selection, so the
                   validation split is free training data: the fair-use variant of the protocol)
  tutorial         the PyTorch tutorial's char-RNN: one name per step, SGD, class-uniform sampling
  majority         always the most frequent training label

Every system but majority runs in a fresh subprocess of this script (so that its peak memory is its
own), with --threads threads (default 1), and reports back as one JSON line on stdout. The split is
the README's held-out protocol (`charclf.data.dataset.split_dataset`); charclf's models are also scored by
name length. Writes a markdown report and a JSON file of every result. Usage:

  python scripts/benchmark.py                    # everything, split seed 0 -> docs/benchmarks.md (+ .json)
  python scripts/benchmark.py --seeds 0,1,2      # per-seed rows and their mean
  python scripts/benchmark.py --quick --out /tmp/bench-quick.md   # smoke test (no --out: writes nothing)

scikit-learn is needed for logreg and logreg-trainval: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"

try:
    import charclf  # (cheap: charclf does not import torch until it needs it)
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    import charclf
from charclf.threads import usable_cores  # noqa: E402 (after the path is set)

# charclf.train(arch=...) with defaults_for(arch, **options): system -> (arch, options)
CHARCLF_MODELS = {"gru": ("gru", {}), "gru-3": ("gru", {"members": 3}), "lstm": ("lstm", {}), "rnn": ("rnn", {}),
                  "ngram": ("ngram", {})}
CHARCLF_SYSTEMS = tuple(CHARCLF_MODELS)
SYSTEMS = (*CHARCLF_SYSTEMS, "logreg", "logreg-trainval", "tutorial", "majority")
LABELS = {
    "gru": "**charclf default: bidirectional GRU with spelling heads**",
    "gru-3": "charclf --members 3 (three default GRUs, probabilities averaged)",
    "lstm": "charclf lstm",
    "rnn": "charclf rnn (plain tanh RNN)",
    "ngram": "charclf --model ngram (its n-gram baseline, no network)",
    "logreg": "TF-IDF char 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn",
    "logreg-trainval": "same, fitted on train+validation",
    "tutorial": "PyTorch tutorial char-RNN (one name per step, SGD, class-uniform sampling)",
    "majority": "always the majority label",
}
# The tutorial's reference method, and the classical peer.
TUTORIAL_STEPS, QUICK_TUTORIAL_STEPS = 100_000, 2_000
TUTORIAL_LR = 0.005
TUTORIAL_HIDDEN = 128
LOGREG_C = 30.0
LOGREG_MAX_ITER, QUICK_LOGREG_MAX_ITER = 1000, 100
# Inference timing: names drawn with replacement from the dataset's raw lines (same list for all).
INFER_NAMES, QUICK_INFER_NAMES = 100_000, 10_000
INFER_SEED = 12345
WARMUP_NAMES = 2048
MEAN_KEYS = ("accuracy", "macro_f1", "train_seconds", "names_per_second", "cli_names_per_second",
             "cli_names_per_second_cores", "peak_train_mb")
# The recurrent models again with --precision bfloat16 (charclf.predict.precision), beside float32's.
BFLOAT16_KEYS = ("accuracy", "macro_f1", "cli_names_per_second", "cli_names_per_second_cores")
MEAN_KEYS += tuple(f"{key}_bfloat16" for key in BFLOAT16_KEYS)


def log(message: str, system: str = "") -> None:
    print(f"[bench{':' + system if system else ''}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float | None:
    """This process's peak resident set size so far plus its largest ended child's (training's
    refit runs in a child process beside it, charclf.training.refit), in MB."""
    try:
        import resource
    except ImportError:  # not Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "CHARCLF_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}


def scored(targets_of: list, predicted: list[int], labels: list[str]) -> dict:
    from charclf.report.metrics import report

    scores = report([label for _, label in targets_of], predicted, labels)
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "n_test": scores["n"]}


def names_per_second(predict, names: list[str]) -> float:
    """The rate of `predict` (a function of a list of raw names) after a warm-up."""
    predict(names[:WARMUP_NAMES])
    started = time.perf_counter()
    predict(names)
    return len(names) / (time.perf_counter() - started)


# ----------------------------------------------------------------------------- children
# Each runs in a fresh process, reads the split the parent wrote (charclf's own load_dataset +
# split_dataset), and prints one JSON object on stdout.


def child_charclf(args, split: dict, names: list[str]) -> dict:
    from charclf.predict.classifier import Classifier
    from charclf.training.comparison import accuracy_by_length
    from charclf.config import defaults_for
    from charclf.predict.scoring import evaluate

    arch, options = CHARCLF_MODELS[args.child]
    model_options, config = defaults_for(arch, seed=args.seed, epochs=1 if args.quick else None, **options)
    out = Path(args.workdir) / f"{args.child}-seed{args.seed}.pt"
    started = time.perf_counter()
    result = charclf.train(args.data, out, arch=arch, model_options=model_options, config=config,
                           progress=False, log=lambda line: log(line, args.child))
    train_seconds = time.perf_counter() - started
    peak = peak_rss_mb()

    clf = Classifier.load(out, device="cpu")
    if clf.labels != split["labels"]:
        raise SystemExit(f"Error: the model's labels {clf.labels} are not the split's {split['labels']}")
    test = split["test"]
    # charclf's one scorer (training, `charclf evaluate` and the Python API use it too).
    evaluated = evaluate(clf.model, [name for name, _ in test], [label for _, label in test], split["labels"],
                         clf.alphabet, clf.device)
    scores = {"accuracy": evaluated["accuracy"], "macro_f1": evaluated["macro_f1"], "n_test": evaluated["n"]}
    metrics = result.metrics
    if abs(scores["accuracy"] - metrics["test"]["accuracy"]) > 1e-9:
        log(f"note: test accuracy on CPU {scores['accuracy']:.4f} differs from training's own "
            f"{metrics['test']['accuracy']:.4f}", args.child)
    return {
        **scores, "train_seconds": train_seconds, "peak_train_mb": peak,
        "names_per_second": names_per_second(clf.predict, names), "inference_names": len(names),
        "cli_names_per_second": cli_names_per_second(out, names, Path(args.workdir), args.threads),
        # The same on every core this process may use (charclf's own choice for a file on a quiet machine).
        "cli_names_per_second_cores": cli_names_per_second(out, names, Path(args.workdir), usable_cores()),
        **(in_bfloat16(out, split, names, Path(args.workdir), args.threads) if arch != "ngram" else {}),
        "by_length": accuracy_by_length(out, args.data, device="cpu"),
        "label_sets": metrics.get("label_sets"),  # conformal sets' test coverage (charclf.predict.conformal)
        "resolved": resolved_configs(out),
        "details": {"best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
                    "parameters": metrics.get("parameters"), "lbfgs_iterations": metrics.get("lbfgs_iterations"),
                    "epoch_seconds": metrics.get("train_seconds"), "device": clf.checkpoint.train_config.get("device")},
    }


def in_bfloat16(checkpoint: Path, split: dict, names: list[str], workdir: Path, threads: int) -> dict:
    """Test scores and `predict --file` rates with --precision bfloat16 (keys: BFLOAT16_KEYS + "_bfloat16")."""
    from charclf.predict.classifier import Classifier
    from charclf.predict.scoring import evaluate

    clf = Classifier.load(checkpoint, device="cpu", precision="bfloat16")
    test = split["test"]
    evaluated = evaluate(clf.model, [name for name, _ in test], [label for _, label in test], split["labels"],
                         clf.alphabet, clf.device, clf.precision)
    return {"accuracy_bfloat16": evaluated["accuracy"], "macro_f1_bfloat16": evaluated["macro_f1"],
            "cli_names_per_second_bfloat16": cli_names_per_second(checkpoint, names, workdir, threads, "bfloat16"),
            "cli_names_per_second_cores_bfloat16": cli_names_per_second(checkpoint, names, workdir, usable_cores(),
                                                                        "bfloat16")}


def resolved_configs(checkpoint: Path) -> dict:
    """The model and training configs the checkpoint records (the training one without run info)."""
    from charclf.files.checkpoint import load_checkpoint
    from charclf.config import TrainConfig

    ck = load_checkpoint(checkpoint)
    return {"model": dataclasses.asdict(ck.model_config),
            "train": {f.name: ck.train_config.get(f.name) for f in dataclasses.fields(TrainConfig)}}


def cli_names_per_second(checkpoint: Path, names: list[str], workdir: Path, threads: int,
                         precision: str = "float32") -> float:
    """The rate of `charclf predict --file` once the model is loaded: (N - 1) names over the time of
    a run on all N names minus that of a run on one (start-up, imports and loading cancel out).
    Each is the best of two runs, with `threads` threads, in `precision`."""
    def seconds(path: Path) -> float:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "charclf", "predict", "--file", str(path), "--checkpoint",
                               str(checkpoint), "--device", "cpu", "--precision", precision],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=thread_env(threads))
        if done.returncode != 0:
            raise SystemExit(f"Error: charclf predict --file failed: {done.stderr.decode()[-300:]}")
        return time.perf_counter() - started

    best = {}
    for key, chunk in (("all", names), ("one", names[:1])):
        path = workdir / f"cli-{key}-names.txt"
        path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
        best[key] = min(seconds(path) for _ in range(2))
    return (len(names) - 1) / (best["all"] - best["one"])


def _tutorial_rnn(n_letters: int, hidden_size: int, n_classes: int):
    """The tutorial's RNN cell: hidden = tanh(i2h(cat(letter, hidden))), output = LogSoftmax(h2o(hidden))."""
    import torch
    from torch import nn

    class TutorialRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden_size = hidden_size
            self.i2h = nn.Linear(n_letters + hidden_size, hidden_size)
            self.h2o = nn.Linear(hidden_size, n_classes)
            self.softmax = nn.LogSoftmax(dim=1)

        def forward(self, line: torch.Tensor) -> torch.Tensor:
            """(len, n_letters) one-hot letters, fed one at a time -> (1, n_classes) log-probabilities."""
            hidden = torch.zeros(1, self.hidden_size)
            for t in range(line.size(0)):
                hidden = torch.tanh(self.i2h(torch.cat((line[t : t + 1], hidden), 1)))
            return self.softmax(self.h2o(hidden))

    return TutorialRNN()


def child_tutorial(args, split: dict, names: list[str]) -> dict:
    import torch
    from torch import nn
    from charclf.data.dataset import encode
    from charclf.report.metrics import report
    from charclf.names.text import DEFAULT_ALPHABET

    steps = QUICK_TUTORIAL_STEPS if args.quick else TUTORIAL_STEPS
    labels = split["labels"]
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = _tutorial_rnn(len(DEFAULT_ALPHABET), TUTORIAL_HIDDEN, len(labels))
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR)

    started = time.perf_counter()
    by_label: list[list[torch.Tensor]] = [[] for _ in labels]
    for name, label in split["train"]:
        by_label[label].append(encode(name, DEFAULT_ALPHABET))
    targets = [torch.tensor([label]) for label in range(len(labels))]
    model.train()
    running, recent = 0.0, 0
    for step in range(1, steps + 1):
        label = rng.randrange(len(labels))  # a label uniformly, then one of its training names
        line = rng.choice(by_label[label])
        loss = criterion(model(line), targets[label])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item()
        recent += 1
        if step % max(1, steps // 10) == 0 or step == steps:
            print(f"[bench:tutorial] step {step:>7}/{steps}  mean loss {running / recent:.4f}  "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            last_loss, running, recent = running / recent, 0.0, 0
    train_seconds = time.perf_counter() - started
    peak = peak_rss_mb()

    # The tutorial's way of predicting: one name at a time, encoded on the fly.
    model.eval()
    test = split["test"]
    with torch.no_grad():
        for name, _ in test[:50]:  # warm-up
            model(encode(name, DEFAULT_ALPHABET)).argmax(1).item()
        started = time.perf_counter()
        predicted = [model(encode(name, DEFAULT_ALPHABET)).argmax(1).item() for name, _ in test]
        elapsed = time.perf_counter() - started
    scores = report([label for _, label in test], predicted, labels)
    return {
        "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "n_test": scores["n"],
        "train_seconds": train_seconds, "names_per_second": len(test) / elapsed, "inference_names": len(test),
        "peak_train_mb": peak, "torch_threads": torch.get_num_threads(),
        "details": {"steps": steps, "lr": TUTORIAL_LR, "hidden_size": TUTORIAL_HIDDEN, "final_mean_loss": last_loss,
                    "parameters": sum(p.numel() for p in model.parameters())},
    }


def child_logreg(args, split: dict, names: list[str]) -> dict:
    # No torch here: this process's memory is scikit-learn's alone.
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits
    from charclf.names.text import fold

    fit_on = split["train"] + (split["val"] if args.child == "logreg-trainval" else [])
    max_iter = QUICK_LOGREG_MAX_ITER if args.quick else LOGREG_MAX_ITER
    with threadpool_limits(limits=args.threads):
        started = time.perf_counter()
        pipeline = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5)),
                                 LogisticRegression(C=LOGREG_C, max_iter=max_iter))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit([name for name, _ in fit_on], [label for _, label in fit_on])
        train_seconds = time.perf_counter() - started
        peak = peak_rss_mb()
        test = split["test"]
        scores = scored(test, [int(p) for p in pipeline.predict([name for name, _ in test])], split["labels"])
        # Same work as charclf's predict: fold the raw names, then probabilities for every label.
        rate = names_per_second(lambda chunk: pipeline.predict_proba([fold(name) for name in chunk]), names)
    n_iter = int(max(pipeline[-1].n_iter_))
    return {
        **scores, "train_seconds": train_seconds, "peak_train_mb": peak,
        "names_per_second": rate, "inference_names": len(names),
        "details": {"sklearn": sklearn.__version__, "features": len(pipeline[0].vocabulary_), "n_iter": n_iter,
                    "max_iter": max_iter, "converged": n_iter < max_iter, "fitted_pairs": len(fit_on)},
    }


def child_main(args) -> int:
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON answer only
            split = read_json(Path(args.workdir) / f"split-seed{args.seed}.json")
            names = read_json(Path(args.workdir) / "inference-names.json")
            if args.child.startswith("logreg"):
                result = child_logreg(args, split, names)
            else:
                import torch

                torch.set_num_threads(args.threads)
                child = child_tutorial if args.child == "tutorial" else child_charclf
                result = child(args, split, names)
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    result.update(system=args.child, seed=args.seed, threads=args.threads)
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


# ----------------------------------------------------------------------------- parent


def run_child(system: str, seed: int, args, workdir: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", system, "--seed", str(seed),
               "--data", str(args.data), "--workdir", str(workdir), "--threads", str(args.threads)]
    if args.quick:
        command.append("--quick")
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=thread_env(args.threads))
    if process.returncode == 130:
        raise KeyboardInterrupt
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    if process.returncode != 0 or not lines:
        return {"system": system, "seed": seed, "error": f"exit code {process.returncode}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"system": system, "seed": seed, "error": "no JSON result"}


def run_majority(split: dict, seed: int) -> dict:
    from collections import Counter

    started = time.perf_counter()
    majority = Counter(label for _, label in split["train"]).most_common(1)[0][0]
    train_seconds = time.perf_counter() - started
    return {"system": "majority", "seed": seed, **scored(split["test"], [majority] * len(split["test"]),
                                                          split["labels"]),
            "train_seconds": train_seconds, "names_per_second": None, "peak_train_mb": None,
            "details": {"label": split["labels"][majority]}}


def distinct_names(lines: list[str], n: int) -> list[str]:
    """n different name-like strings for timing: the first half of one raw dataset line (drawn at
    random) joined to the second half of another, as long as real names and in their letters, but
    never repeated (charclf runs a repeated name once, which would time nothing)."""
    rng, seen = random.Random(INFER_SEED), set()
    while len(seen) < n:
        a, b = rng.choice(lines), rng.choice(lines)
        seen.add(a[: len(a) // 2] + b[len(b) // 2 :])
    names = sorted(seen)
    rng.shuffle(names)
    return names


def dataset_lines(data: Path) -> list[str]:
    """Every non-empty raw line of the dataset's <Label>.txt files, in file order."""
    from charclf.data.dataset import read_label_file

    return [line for path in sorted(data.glob("*.txt")) if path.is_file() for line in read_label_file(path) if line]


def prepare_data(args, workdir: Path) -> dict[int, dict]:
    """Write each seed's split and the inference names for the children; return the split sizes."""
    from charclf.data.dataset import load_dataset, split_dataset

    dataset = load_dataset(args.data)
    names = distinct_names(dataset_lines(args.data), QUICK_INFER_NAMES if args.quick else INFER_NAMES)
    (workdir / "inference-names.json").write_text(json.dumps(names), encoding="utf-8")
    sizes = {}
    for seed in args.seed_list:
        splits = split_dataset(dataset, seed=seed)
        split = {"labels": dataset.labels, **{k: [list(p) for p in v] for k, v in splits.items()}}
        (workdir / f"split-seed{seed}.json").write_text(json.dumps(split), encoding="utf-8")
        sizes[seed] = {"labels": len(dataset.labels), **{k: len(v) for k, v in splits.items()}}
    log(f"data: {args.data} ({len(dataset.labels)} labels, {len(dataset.pairs):,} pairs); "
        + "; ".join(f"seed {s}: {v['train']:,} / {v['val']:,} / {v['test']:,}" for s, v in sizes.items()))
    return sizes


def run_all(args, workdir: Path) -> dict[int, dict[str, dict]]:
    results: dict[int, dict[str, dict]] = {seed: {} for seed in args.seed_list}
    total, done = len(args.seed_list) * len(args.systems), 0
    for seed in args.seed_list:
        for system in args.systems:
            done += 1
            log(f"[{done}/{total}] seed {seed}: {system} ...")
            began = time.perf_counter()
            if system == "majority":
                result = run_majority(read_json(workdir / f"split-seed{seed}.json"), seed)
            else:
                result = run_child(system, seed, args, workdir)
            results[seed][system] = result
            if "error" in result:
                log(f"[{done}/{total}] seed {seed}: {system} FAILED ({result['error']})")
            else:
                log(f"[{done}/{total}] seed {seed}: {system}: accuracy {result['accuracy']:.4f}, macro-F1 "
                    f"{result['macro_f1']:.4f}, training {result['train_seconds']:.1f} s "
                    f"({time.perf_counter() - began:.1f} s in all)")
    return results


def machine_description(threads: int) -> list[tuple[str, str]]:
    import importlib.metadata

    import torch

    from charclf.predict.precision import native_bfloat16

    def proc(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            return next((line.split(":", 1)[1].strip() for line in Path(path).read_text().splitlines()
                         if line.startswith(key)), None)
        return None

    ram = proc("/proc/meminfo", "MemTotal")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    try:
        sklearn_version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        sklearn_version = "not installed"
    return [
        ("CPU", proc("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()),
        ("cores", f"{os.cpu_count()} ({usable} usable by this process)"),
        ("threads", f"{threads} per system (--threads): torch.set_num_threads in the torch runs, threadpoolctl "
                    f"limits for scikit-learn, CHARCLF_THREADS and OMP_NUM_THREADS for `predict --file`"),
        ("RAM", f"{int(ram.split()[0]) / 2**20:.1f} GiB" if ram else "unknown"),
        ("load average", f"{load} (1, 5, 15 min, at the start)"),
        ("bfloat16 instructions (AVX512-BF16 or AMX)", "yes" if native_bfloat16() else "no: torch emulates them"),
        ("Python", platform.python_version()), ("torch", str(torch.__version__)),
        ("scikit-learn", sklearn_version), ("OS", platform.platform()),
    ]


# ----------------------------------------------------------------------------- report


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "score":
        return f"{value:.3f}"
    if kind == "seconds":
        return f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"
    return f"{value:,.0f}"  # names/s, MB


def mean_results(seeds: list[int], systems: list[str], results: dict) -> dict[str, dict]:
    """Each system's mean over the seeds (only systems with no failed seed), by-length groups included."""
    means = {}
    for system in systems:
        runs = [results[seed][system] for seed in seeds]
        if any("error" in r for r in runs):
            continue
        means[system] = {key: mean([r.get(key) for r in runs]) for key in MEAN_KEYS}
        if "by_length" in runs[0]:
            means[system]["by_length"] = {group: {"n": [r["by_length"][group]["n"] for r in runs],
                                                  "accuracy": mean([r["by_length"][group]["accuracy"] for r in runs])}
                                          for group in runs[0]["by_length"]}
    return means


def results_table(seeds: list[int], systems: list[str], results: dict, means: dict) -> str:
    lines = ["| system | test accuracy | macro-F1 | training s | inference names/s | `predict --file` names/s "
             f"| `predict --file` names/s, {usable_cores()} threads | peak training memory (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(label: str, r: dict, bold: bool = False) -> str:
        score = (lambda v: f"**{fmt(v, 'score')}**") if bold else (lambda v: fmt(v, "score"))
        return (f"| {label} | {score(r['accuracy'])} | {score(r['macro_f1'])} | {fmt(r['train_seconds'], 'seconds')} "
                f"| {fmt(r['names_per_second'], 'rate')} | {fmt(r.get('cli_names_per_second'), 'rate')} "
                f"| {fmt(r.get('cli_names_per_second_cores'), 'rate')} | {fmt(r['peak_train_mb'], 'mb')} |")

    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            label = LABELS[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            lines.append(f"| {label} | failed ({r['error']}) | - | - | - | - | - | - |" if "error" in r else row(label, r))
        if len(seeds) > 1 and system in means:
            label = f"**{LABELS[system].strip('*')}, mean of seeds {', '.join(map(str, seeds))}**"
            lines.append(row(label, means[system], bold=True))
    return "\n".join(lines)


def length_table(seeds: list[int], means: dict) -> str | None:
    shown = [s for s in CHARCLF_SYSTEMS if "by_length" in means.get(s, {})]
    if not shown:
        return None
    groups = means[shown[0]]["by_length"]
    header = " | ".join(f"{group} letters (n = {' / '.join(f'{n:,}' for n in g['n'])})" for group, g in groups.items())
    lines = [f"| system | {header} |", "|---|" + "---:|" * len(groups)]
    for system in shown:
        cells = " | ".join(fmt(g["accuracy"], "score") for g in means[system]["by_length"].values())
        lines.append(f"| {LABELS[system]} | {cells} |")
    where = "seed " + str(seeds[0]) if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}; n per seed"
    return "\n".join(lines) + f"\n\nn: test names in the group ({where})."


def label_set_table(seeds: list[int], systems: list[str], results: dict) -> str | None:
    """Each charclf model's conformal label sets on the test split: coverage and mean size per level."""
    shown = [s for s in systems if all(results[seed][s].get("label_sets") for seed in seeds)]
    if not shown:
        return None
    levels = [row["coverage_target"] for row in results[seeds[0]][shown[0]]["label_sets"]]
    header = " | ".join(f"{level:.0%}: coverage | mean size" for level in levels)
    lines = [f"| system | {header} |", "|---|" + "---:|" * (2 * len(levels))]
    for system in shown:
        rows = [results[seed][system]["label_sets"] for seed in seeds]
        cells = [f"{fmt(mean([r[i]['coverage'] for r in rows]), 'score')} | {mean([r[i]['mean_size'] for r in rows]):.2f}"
                 for i in range(len(levels))]
        lines.append(f"| {LABELS[system]} | {' | '.join(cells)} |")
    where = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"
    return "\n".join(lines) + (f"\n\nConformal label sets ({where}), thresholds fitted on the validation split "
                               "at save time (charclf.predict.conformal); coverage is the share of test names whose set "
                               "holds the true label.")


def precision_table(seeds: list[int], means: dict) -> str | None:
    """The recurrent models in float32 (their default) and bfloat16: test scores and `predict --file` rates."""
    shown = [s for s in CHARCLF_SYSTEMS if means.get(s, {}).get("accuracy_bfloat16") is not None]
    if not shown:
        return None
    cores = usable_cores()
    lines = ["| system | accuracy float32 / bfloat16 | macro-F1 float32 / bfloat16 | `predict --file` names/s, "
             f"1 thread, float32 / bfloat16 | the same, {cores} threads |", "|---|---:|---:|---:|---:|"]
    for system in shown:
        m = means[system]
        pair = lambda key, kind: f"{fmt(m[key], kind)} / {fmt(m[key + '_bfloat16'], kind)}"  # noqa: E731
        lines.append(f"| {LABELS[system]} | {pair('accuracy', 'score')} | {pair('macro_f1', 'score')} "
                     f"| {pair('cli_names_per_second', 'rate')} | {pair('cli_names_per_second_cores', 'rate')} |")
    where = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"
    return "\n".join(lines) + (f"\n\nThe same trained models predicting with `--precision bfloat16` ({where}; "
                               "charclf.predict.precision): float32 is the default.")


def verdict(seeds: list[int], means: dict, quick: bool) -> str:
    text = ("**Does charclf's default (a purely recurrent bidirectional GRU) beat the n-gram logistic regression "
            "on both accuracy and macro-F1?**")
    peers = [(p, how) for p, how in (("logreg", "fitted on the train split"),
                                     ("logreg-trainval", "fitted on train+validation")) if p in means]
    if "gru" not in means or not peers:
        text += " Not measured in this run (it needs `gru` and `logreg` or `logreg-trainval`)."
        return text
    for system in ("gru", "gru-3"):
        if system not in means:
            continue
        g = means[system]
        if system != "gru":
            text += f" **And {LABELS[system]}?**"
        for peer, how in peers:
            p = means[peer]
            beats = g["accuracy"] > p["accuracy"] and g["macro_f1"] > p["macro_f1"]
            text += (f" Against the logistic regression {how}: **{'yes' if beats else 'no'}** (accuracy "
                     f"{g['accuracy']:.3f} vs {p['accuracy']:.3f}, macro-F1 {g['macro_f1']:.3f} vs {p['macro_f1']:.3f}).")
    text += f" ({'Split seed ' + str(seeds[0]) if len(seeds) == 1 else 'Means over split seeds ' + ', '.join(map(str, seeds))}.)"
    return text + (" (Quick smoke-test settings: these numbers measure nothing.)" if quick else "")


def protocol(args, sizes: dict) -> str:
    size_text = "; ".join(f"{s['train']:,} / {s['val']:,} / {s['test']:,} train / validation / test pairs for "
                          f"seed {seed}" for seed, s in sizes.items())
    n_infer = QUICK_INFER_NAMES if args.quick else INFER_NAMES
    return (
        f"Every system trains on the train split made by charclf's own `load_dataset` + `split_dataset(seed)` "
        f"(names folded to ASCII, duplicate (name, label) pairs collapsed, unique name strings shuffled and cut "
        f"80/10/10 so that no name text is in two splits: {size_text}) and is scored on the test split with "
        f"`charclf.report.metrics.report` (accuracy; macro-F1 = mean of the per-label F1 over all "
        f"{next(iter(sizes.values()))['labels']} labels). charclf's models pick their best epoch on the "
        f"validation split; the logistic regression, which selects nothing, is shown both fitted on the train "
        f"split alone and on train + validation. Each charclf model takes its settings from "
        f"`charclf.config.defaults_for(arch, seed=seed)` and nothing else. The systems run one after another on "
        f"this machine, each in a fresh subprocess with {args.threads} thread(s): training s is the wall time of "
        f"the training call, peak training memory is that process's peak RSS when training ends (interpreter and "
        f"libraries included), and inference names/s is measured on the loaded model after a warm-up (charclf: "
        f"`Classifier.load(path, device='cpu').predict` on {n_infer:,} different names, each the first half of a "
        f"raw dataset line drawn at random joined to the second half of another (charclf runs a repeated name "
        f"once, so repeats would time nothing); "
        f"logistic regression: folding + `predict_proba` on the same names; tutorial: its one-name-at-a-time loop "
        f"over the test names). `predict --file` names/s is the command itself on those lines, start-up and model "
        f"loading excluded: (N - 1) / (time for N names - time for one name), each the best of two runs, output "
        f"to /dev/null, with {args.threads} thread(s) and again with one per usable core ({usable_cores()}). "
        f"Accuracy by name length is `charclf.training.comparison.accuracy_by_length` on the test split."
    )


def notes(seeds: list[int], systems: list[str], results: dict) -> list[str]:
    lines = []
    for system in systems:
        for seed in seeds:
            r, tag = results[seed][system], LABELS[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            d = r.get("details", {})
            if "error" in r:
                continue
            if "resolved" in r:
                configs = {**{k: v for k, v in r["resolved"]["model"].items() if k not in ("n_letters", "n_classes")},
                           **{k: v for k, v in r["resolved"]["train"].items() if k != "seed"}}
                lbfgs = f", {d['lbfgs_iterations']} L-BFGS iterations" if d.get("lbfgs_iterations") else ""
                lines.append(f"- {tag}: {', '.join(f'{k}={v}' for k, v in configs.items())}; best epoch "
                             f"{d['best_epoch']} of {d['epochs_run']}{lbfgs}, {d['parameters']:,} parameters, trained "
                             f"on {d['device']} ({fmt(d['epoch_seconds'], 'seconds')} s of it in the fitting itself).")
            elif system == "tutorial":
                lines.append(f"- {tag}: tanh RNN cell (i2h on concat(letter, hidden), h2o, LogSoftmax), hidden "
                             f"{d['hidden_size']}, {d['parameters']:,} parameters, NLLLoss, plain SGD lr {d['lr']}, "
                             f"{d['steps']:,} steps of one name (a uniformly random label, then one of its training "
                             f"names); mean loss over the last tenth {d['final_mean_loss']:.3f}.")
            elif system.startswith("logreg"):
                lines.append(f"- {tag}: fitted on {d['fitted_pairs']:,} pairs, {d['features']:,} n-gram features, "
                             f"lbfgs stopped after {d['n_iter']} iterations (max_iter {d['max_iter']}, "
                             f"{'converged' if d['converged'] else 'NOT converged'}), scikit-learn {d['sklearn']}.")
            elif system == "majority":
                lines.append(f"- {tag}: always \"{d['label']}\".")
    return lines


def build_report(args, results: dict, sizes: dict, machine: list, started: str, command: str) -> tuple[str, str, dict]:
    """(the markdown document, what goes to stdout, the JSON record)."""
    seeds, systems = args.seed_list, args.systems
    means = mean_results(seeds, systems, results)
    table, by_length = results_table(seeds, systems, results, means), length_table(seeds, means)
    answer = verdict(seeds, means, args.quick)
    title = "# charclf benchmark" + (" (QUICK SMOKE TEST: tiny settings, not a measurement)" if args.quick else "")
    parts = [title, "", f"Run {started}, with:", "", "```", command, "```", "", "## Machine", "",
             *[f"- {key}: {value}" for key, value in machine], "", "## Protocol", "", protocol(args, sizes), "",
             "## Results", "", table, "", answer, ""]
    if by_length:
        parts += ["### Test accuracy by name length", "", by_length, ""]
    precisions = precision_table(seeds, means)
    if precisions:
        parts += ["### Precision: float32 and bfloat16", "", precisions, ""]
    sets = label_set_table(seeds, systems, results)
    if sets:
        parts += ["### Conformal label sets", "", sets, ""]
    parts += ["Notes:", "", *notes(seeds, systems, results), "",
              "Time figures on shared machines are noisy: compare systems within one run, as ratios.", ""]
    summary = "\n\n".join([table, answer, *([by_length] if by_length else [])])
    record = {"command": command, "started": started, "data": str(args.data), "quick": args.quick,
              "threads": args.threads, "seeds": seeds, "systems": systems, "machine": dict(machine),
              "sizes": sizes, "results": {str(seed): results[seed] for seed in seeds}, "means": means}
    return "\n".join(parts), summary, record


OTHER_SECTIONS = "<!-- sections written by other scripts -->"


def with_other_sections(path: Path | None, document: str) -> str:
    """This report, then whatever the report at `path` holds below OTHER_SECTIONS (the sections
    that scripts/benchmark_onnx.py, benchmark_scripts.py, load_test.py and people add), kept."""
    kept = ""
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
        kept = text[text.index(OTHER_SECTIONS):] if OTHER_SECTIONS in text else ""
    return document.rstrip("\n") + "\n\n" + (kept or OTHER_SECTIONS + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmark.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark charclf's models against a character n-gram logistic regression, the PyTorch "
                    "tutorial's char-RNN and the majority baseline, in one run, on charclf's own split.",
        epilog="systems, in order: " + ", ".join(SYSTEMS))
    parser.add_argument("--data", type=Path, default=None, help="dataset folder (default: $CHARCLF_DATA, else ./data/names)")
    parser.add_argument("--seeds", default="0", help="split seeds, comma-separated (default: 0); several give "
                        "per-seed rows and their mean")
    parser.add_argument("--out", type=Path, default=None, help="markdown report to write (default: "
                        "docs/benchmarks.md; --quick writes nothing unless --out is given)")
    parser.add_argument("--json-out", type=Path, default=None, help="JSON results to write (default: --out's path "
                        "with a .json suffix)")
    parser.add_argument("--threads", type=int, default=1, help="threads for every system (default: 1)")
    parser.add_argument("--only", default=None, help="comma-separated systems to run (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"tiny settings for a smoke test: 1 epoch per charclf "
                        f"model, {QUICK_TUTORIAL_STEPS:,} tutorial steps, logistic regression max_iter "
                        f"{QUICK_LOGREG_MAX_ITER}, {QUICK_INFER_NAMES:,} names for inference timing")
    # Internal: run one system in this (child) process and print its result as JSON.
    parser.add_argument("--child", default=None, choices=[s for s in SYSTEMS if s != "majority"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        args.seed_list = list(dict.fromkeys(int(s) for s in args.seeds.split(",") if s.strip()))
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not args.seed_list or any(s < 0 for s in args.seed_list):
        parser.error(f"--seeds must be non-negative integers, got {args.seeds!r}")
    wanted = [s.strip() for s in (args.only or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown or not wanted:
        parser.error(f"--only: unknown system(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SYSTEMS)}")
    args.systems = [s for s in SYSTEMS if s in wanted]
    if any(s.startswith("logreg") for s in args.systems) and importlib.util.find_spec("sklearn") is None:
        parser.error('logreg needs scikit-learn: pip install -e ".[bench]" (or leave it out with --only)')
    args.data = Path(args.data or os.environ.get("CHARCLF_DATA") or "data/names").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    from charclf.errors import CharclfError

    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    machine = machine_description(args.threads)
    with tempfile.TemporaryDirectory(prefix="charclf-bench-") as tmp:
        try:
            sizes = prepare_data(args, Path(tmp))
        except CharclfError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        results = run_all(args, Path(tmp))
    document, summary, record = build_report(args, results, sizes, machine, started, command)
    print(summary)
    out = args.out or (None if args.quick else DEFAULT_OUT)
    json_out = args.json_out or (out.with_suffix(".json") if out else None)
    for path, text in ((out, with_other_sections(out, document)), (json_out, json.dumps(record, indent=2) + "\n")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            log(f"wrote {path}")
    if out is None and json_out is None:
        log("quick mode: nothing written (give --out FILE to write the report and its JSON)")
    return 1 if any("error" in r for by_system in results.values() for r in by_system.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
