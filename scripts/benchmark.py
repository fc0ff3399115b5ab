#!/usr/bin/env python
"""Benchmark charclf against its peers on one machine, in one run, on charclf's own split.

Systems (names for --only):

  default   charclf.train() with every default (its default backbone)
  gru, lstm, rnn (charclf.config.ARCHS)
            each backbone with charclf's defaults for it (charclf.config.ARCH_DEFAULTS[arch]
            when that table exists); the default backbone's run is skipped when it would be
            the very same run as `default`
  tutorial  the PyTorch tutorial's char-RNN: one name per step, SGD, class-uniform sampling
  logreg    TF-IDF character 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn
  majority  always the most frequent training label

Every system trains in a fresh subprocess of this script (so that its peak memory is its own)
and reports back as one JSON line on stdout. The split is the held-out protocol of the README:
see `charclf.data.split_dataset`. Usage:

  python scripts/benchmark.py                       # everything, split seed 0 -> docs/benchmarks.md
  python scripts/benchmark.py --seeds 0,1,2         # per-seed rows and their mean
  python scripts/benchmark.py --quick --threads 1 --out /tmp/bench-quick.md   # smoke test

scikit-learn is needed for `logreg`: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import inspect
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"

try:
    import charclf  # noqa: F401  (cheap: charclf does not import torch until it needs it)
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    import charclf  # noqa: F401

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

TUTORIAL_LABEL = "PyTorch tutorial char-RNN (one name per step, SGD, class-uniform sampling)"
LOGREG_LABEL = "TF-IDF char 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn"
MAJORITY_LABEL = "always the majority label"


# ----------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def arch_names() -> tuple[str, ...]:
    from charclf.config import ARCHS

    return tuple(ARCHS)


def all_systems() -> tuple[str, ...]:
    return ("default", *arch_names(), "tutorial", "logreg", "majority")


def default_arch() -> str:
    """charclf.train()'s own default backbone (imports torch)."""
    import charclf

    return inspect.signature(charclf.train).parameters["arch"].default


def charclf_settings(system: str, seed: int, quick: bool) -> tuple[str | None, dict[str, Any], Any]:
    """(arch or None for train()'s default, model_options, TrainConfig) for a charclf system,
    read from charclf itself: the dataclass defaults, plus charclf.config.ARCH_DEFAULTS[arch]
    (model options and training overrides in one dict) when charclf has that table."""
    import charclf.config as config

    model_fields = {f.name for f in dataclasses.fields(config.ModelConfig)} - {"arch", "n_letters", "n_classes"}
    train_fields = {f.name for f in dataclasses.fields(config.TrainConfig)}
    model_options: dict[str, Any] = {}
    train_options: dict[str, Any] = {}
    arch = None
    if system != "default":
        arch = system
        overrides = dict(getattr(config, "ARCH_DEFAULTS", {}).get(arch, {}) or {})
        for key, value in overrides.items():
            if key in model_fields:
                model_options[key] = value
            elif key in train_fields:
                train_options[key] = value
            else:
                raise SystemExit(f"Error: charclf.config.ARCH_DEFAULTS[{arch!r}] has {key!r}, which is neither a "
                                 "ModelConfig nor a TrainConfig field")
    train_options["seed"] = seed
    if quick:
        train_options["epochs"] = 1
    return arch, model_options, config.TrainConfig(**train_options)


def expected_resolved(system: str, seed: int, quick: bool, n_classes: int) -> dict[str, Any]:
    """The model and training configs a charclf system's checkpoint will record."""
    from charclf.config import ModelConfig
    from charclf.text import DEFAULT_ALPHABET

    arch, model_options, train_config = charclf_settings(system, seed, quick)
    model = ModelConfig(arch=arch or default_arch(), n_letters=len(DEFAULT_ALPHABET), n_classes=n_classes,
                        **model_options)
    # Through JSON, as the child's copy came.
    return json.loads(json.dumps({"model": dataclasses.asdict(model), "train": dataclasses.asdict(train_config)}))


def peak_rss_mb() -> float | None:
    """This process's peak resident set size so far, in MB."""
    try:
        import resource
    except ImportError:  # not Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- children
# Each runs in a fresh process, reads the split the parent wrote (made with charclf's own
# load_dataset + split_dataset), and prints one JSON object on stdout.


def child_charclf(args, split: dict, names: list[str]) -> dict:
    import charclf
    import torch
    from charclf.classifier import Classifier
    from charclf.metrics import report

    arch, model_options, train_config = charclf_settings(args.child, args.seed, args.quick)
    out = Path(args.workdir) / f"{args.child}-seed{args.seed}.pt"
    kwargs: dict[str, Any] = {} if arch is None else {"arch": arch, "model_options": model_options or None}
    started = time.perf_counter()
    result = charclf.train(args.data, out, config=train_config, progress=False,
                           log=lambda line: print(f"[bench:{args.child}] {line}", file=sys.stderr, flush=True),
                           **kwargs)
    train_seconds = time.perf_counter() - started
    peak = peak_rss_mb()

    clf = Classifier.load(out, device="cpu")
    if clf.labels != split["labels"]:
        raise SystemExit(f"Error: the model's labels {clf.labels} are not the split's {split['labels']}")
    test = split["test"]
    predicted = clf.probabilities([name for name, _ in test]).argmax(1).tolist()
    scores = report([label for _, label in test], predicted, split["labels"])
    if abs(scores["accuracy"] - result.metrics["test"]["accuracy"]) > 1e-9:
        log(f"note: test accuracy on CPU {scores['accuracy']:.4f} differs from training's own "
            f"{result.metrics['test']['accuracy']:.4f} (trained on {clf.checkpoint.train_config.get('device')})")

    clf.predict(names[:WARMUP_NAMES])
    started = time.perf_counter()
    clf.predict(names)
    names_per_second = len(names) / (time.perf_counter() - started)

    cli_rate = cli_names_per_second(out, names, Path(args.workdir))
    train_info = clf.checkpoint.train_config
    return {
        "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "n_test": scores["n"],
        "train_seconds": train_seconds, "names_per_second": names_per_second, "inference_names": len(names),
        "cli_names_per_second": cli_rate,
        "peak_train_mb": peak, "torch_threads": torch.get_num_threads(),
        "resolved": {
            "model": dataclasses.asdict(clf.checkpoint.model_config),
            "train": {f.name: train_info.get(f.name) for f in dataclasses.fields(charclf.TrainConfig)},
        },
        "details": {
            "arch": clf.checkpoint.model_config.arch, "device": train_info.get("device"),
            "best_epoch": result.metrics.get("best_epoch"), "epochs_run": result.metrics.get("epochs_run"),
            "epoch_seconds": result.metrics.get("train_seconds"), "parameters": result.metrics.get("parameters"),
        },
    }


def cli_names_per_second(checkpoint: Path, names: list[str], workdir: Path) -> float:
    """The rate of `charclf predict --file` once the model is loaded: (N - 1) names over the time of
    a run on all N names minus that of a run on one (start-up, imports and loading cancel out).
    Each is the best of two runs, with as many torch threads as this process."""
    import torch

    files = {}
    for key, chunk in (("all", names), ("one", names[:1])):
        files[key] = workdir / f"cli-{key}-names.txt"
        files[key].write_text("\n".join(chunk) + "\n", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}

    def seconds(path: Path) -> float:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "charclf", "predict", "--file", str(path), "--checkpoint",
                               str(checkpoint), "--device", "cpu"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
        if done.returncode != 0:
            raise SystemExit(f"Error: charclf predict --file failed: {done.stderr.decode()[-300:]}")
        return time.perf_counter() - started

    return (len(names) - 1) / (min(seconds(files["all"]) for _ in range(2)) - min(seconds(files["one"]) for _ in range(2)))


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
    from charclf.data import encode
    from charclf.metrics import report
    from charclf.text import DEFAULT_ALPHABET

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
    from charclf.metrics import report
    from charclf.text import fold

    max_iter = QUICK_LOGREG_MAX_ITER if args.quick else LOGREG_MAX_ITER
    limits = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=args.threads)
    with limits:
        started = time.perf_counter()
        pipeline = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5)),
                                 LogisticRegression(C=LOGREG_C, max_iter=max_iter))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit([name for name, _ in split["train"]], [label for _, label in split["train"]])
        train_seconds = time.perf_counter() - started
        peak = peak_rss_mb()

        test = split["test"]
        predicted = [int(p) for p in pipeline.predict([name for name, _ in test])]
        scores = report([label for _, label in test], predicted, split["labels"])

        # Same work as charclf's predict: fold the raw names, then probabilities for every label.
        pipeline.predict_proba([fold(name) for name in names[:WARMUP_NAMES]])
        started = time.perf_counter()
        pipeline.predict_proba([fold(name) for name in names])
        names_per_second = len(names) / (time.perf_counter() - started)
    n_iter = int(max(pipeline[-1].n_iter_))
    return {
        "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "n_test": scores["n"],
        "train_seconds": train_seconds, "names_per_second": names_per_second, "inference_names": len(names),
        "peak_train_mb": peak, "torch_threads": None,
        "details": {"sklearn": sklearn.__version__, "features": len(pipeline[0].vocabulary_), "n_iter": n_iter,
                    "max_iter": max_iter, "converged": n_iter < max_iter},
    }


def child_main(args) -> int:
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON answer only
            set_threads(args.threads if args.child != "logreg" else None)
            split = read_json(Path(args.workdir) / f"split-seed{args.seed}.json")
            names = read_json(Path(args.workdir) / "inference-names.json")
            if args.child == "tutorial":
                result = child_tutorial(args, split, names)
            elif args.child == "logreg":
                result = child_logreg(args, split, names)
            else:
                result = child_charclf(args, split, names)
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    result.update(system=args.child, seed=args.seed)
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


# ----------------------------------------------------------------------------- parent


def run_child(system: str, seed: int, args, workdir: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", system, "--seed", str(seed),
               "--data", str(args.data), "--workdir", str(workdir)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.quick:
        command.append("--quick")
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # stderr: straight through
    if process.returncode == 130:
        raise KeyboardInterrupt
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    if process.returncode != 0 or not lines:
        return {"system": system, "seed": seed, "error": f"exit code {process.returncode}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"system": system, "seed": seed, "error": "no JSON result"}


def run_majority(split: dict) -> dict:
    from collections import Counter

    from charclf.metrics import report

    started = time.perf_counter()
    majority = Counter(label for _, label in split["train"]).most_common(1)[0][0]
    train_seconds = time.perf_counter() - started
    test = split["test"]
    scores = report([label for _, label in test], [majority] * len(test), split["labels"])
    return {"system": "majority", "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "n_test": scores["n"], "train_seconds": train_seconds, "names_per_second": None,
            "peak_train_mb": None, "details": {"label": split["labels"][majority]}}


def machine_description(threads: int | None) -> list[tuple[str, str]]:
    import torch

    set_threads(threads)
    cpu = platform.processor() or platform.machine()
    ram = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    try:
        import sklearn

        sklearn_version = sklearn.__version__
    except ImportError:
        sklearn_version = "not installed"
    cores = f"{os.cpu_count()}"
    if hasattr(os, "sched_getaffinity"):
        cores += f" ({len(os.sched_getaffinity(0))} usable by this process)"
    load = "unknown"
    with contextlib.suppress(OSError, AttributeError):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min, at the start)"
    return [
        ("CPU", cpu),
        ("cores", cores),
        ("torch threads", f"{torch.get_num_threads()}" + (" (--threads)" if threads else " (torch's default)")),
        ("RAM", ram),
        ("load average", load),
        ("Python", platform.python_version()),
        ("torch", str(torch.__version__)),
        ("scikit-learn", sklearn_version),
        ("OS", platform.platform()),
    ]


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


def config_text(resolved: dict) -> str:
    model = {k: v for k, v in resolved["model"].items() if k not in ("n_letters", "n_classes")}
    train = {k: v for k, v in resolved["train"].items() if k != "seed"}
    return ", ".join(f"{k}={v}" for k, v in {**model, **train}.items())


def build_report(args, seeds: list[int], systems: list[str], results: dict, merged: dict, sizes: dict,
                 machine: list[tuple[str, str]], default: str, has_arch_defaults: bool, started: str,
                 command: str) -> tuple[str, str]:
    """(the markdown document, what goes to stdout: the table and the verdict)."""
    labels = {"default": f"charclf default ({default})", "tutorial": TUTORIAL_LABEL, "logreg": LOGREG_LABEL,
              "majority": MAJORITY_LABEL}
    for arch in arch_names():
        labels[arch] = f"charclf {arch}" + (" (charclf's per-arch defaults)" if has_arch_defaults else "")
    shown = [s for s in systems if not (s in merged and all(merged[s].get(seed) for seed in seeds))]

    header = ["| system | test accuracy | macro-F1 | training s | inference names/s | `predict --file` names/s "
              "| peak training memory (MB) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    rows: list[str] = []
    means: dict[str, dict] = {}
    for system in shown:
        per_seed = [results[seed][system] for seed in seeds]
        for seed, r in zip(seeds, per_seed):
            label = labels[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            if "error" in r:
                rows.append(f"| {label} | failed ({r['error']}) | - | - | - | - | - |")
                continue
            rows.append(f"| {label} | {fmt(r['accuracy'], 'score')} | {fmt(r['macro_f1'], 'score')} | "
                        f"{fmt(r['train_seconds'], 'seconds')} | {fmt(r['names_per_second'], 'rate')} | "
                        f"{fmt(r.get('cli_names_per_second'), 'rate')} | {fmt(r['peak_train_mb'], 'mb')} |")
        ok = [r for r in per_seed if "error" not in r]
        if len(ok) == len(per_seed):
            means[system] = {k: mean([r.get(k) for r in ok]) for k in
                             ("accuracy", "macro_f1", "train_seconds", "names_per_second", "cli_names_per_second",
                              "peak_train_mb")}
        if len(seeds) > 1 and system in means:
            m = means[system]
            rows.append(f"| **{labels[system]}, mean of seeds {', '.join(map(str, seeds))}** | "
                        f"**{fmt(m['accuracy'], 'score')}** | **{fmt(m['macro_f1'], 'score')}** | "
                        f"{fmt(m['train_seconds'], 'seconds')} | {fmt(m['names_per_second'], 'rate')} | "
                        f"{fmt(m['cli_names_per_second'], 'rate')} | {fmt(m['peak_train_mb'], 'mb')} |")
    table = "\n".join(header + rows)

    where = f"split seed {seeds[0]}" if len(seeds) == 1 else f"mean over split seeds {', '.join(map(str, seeds))}"
    if "default" in means and "logreg" in means:
        d, l = means["default"], means["logreg"]
        beats = d["accuracy"] > l["accuracy"] and d["macro_f1"] > l["macro_f1"]
        verdict = (f"**Does charclf's default ({default}) beat the n-gram logistic regression on both accuracy and "
                   f"macro-F1 in this run?** {'Yes' if beats else 'No'}: accuracy {d['accuracy']:.3f} vs "
                   f"{l['accuracy']:.3f}, macro-F1 {d['macro_f1']:.3f} vs {l['macro_f1']:.3f} ({where}).")
    else:
        verdict = ("**Does charclf's default beat the n-gram logistic regression on both accuracy and macro-F1?** "
                   "Not measured in this run (it needs both `default` and `logreg`).")
    if args.quick:
        verdict += " (Quick smoke-test settings: these numbers measure nothing.)"

    size_text = "; ".join(f"{s['train']:,} / {s['val']:,} / {s['test']:,} train / validation / test pairs for "
                          f"seed {seed}" for seed, s in sizes.items())
    n_labels = len(next(iter(sizes.values()))["labels"]) if sizes else 0
    n_infer = QUICK_INFER_NAMES if args.quick else INFER_NAMES
    protocol = (
        f"Every system trains on the train split made by charclf's own `load_dataset` + `split_dataset(seed)` "
        f"(names folded to ASCII, duplicate (name, label) pairs collapsed, unique name strings shuffled and cut "
        f"80/10/10 so that no name text is in two splits: {size_text}) and is scored on the test split with "
        f"`charclf.metrics.report` (accuracy; macro-F1 = mean of the per-label F1 over all {n_labels} labels). "
        f"The systems run one after another on this machine, each training in a fresh subprocess: training s is "
        f"the wall time of the training call, peak training memory is that process's peak RSS when training "
        f"ends (interpreter and libraries included), and inference names/s is measured on the loaded model after a "
        f"warm-up (charclf: `Classifier.load(path, device='cpu').predict` on {n_infer:,} raw dataset lines drawn "
        f"with replacement; logistic regression: folding + `predict_proba` on the same lines; tutorial: its "
        f"one-name-at-a-time loop over the test names). `predict --file` names/s is the command itself on those "
        f"lines, start-up and model loading excluded: (N - 1) / (time for N names - time for one name), each the "
        f"best of two runs, output to /dev/null."
    )

    notes = []
    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            if "error" in r or (system in merged and merged[system].get(seed)):
                continue
            d = r.get("details", {})
            tag = labels[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            if "resolved" in r:
                notes.append(f"- {tag}: {config_text(r['resolved'])}; best epoch {d.get('best_epoch')} of "
                             f"{d.get('epochs_run')}, {d.get('parameters'):,} parameters, trained on "
                             f"{d.get('device')} ({fmt(d.get('epoch_seconds'), 'seconds')} s of it in the epochs "
                             f"themselves).")
            elif system == "tutorial":
                notes.append(f"- {tag}: tanh RNN cell (i2h on concat(letter, hidden), h2o, LogSoftmax), hidden "
                             f"{d['hidden_size']}, {d['parameters']:,} parameters, NLLLoss, plain SGD lr {d['lr']}, "
                             f"{d['steps']:,} steps of one name (a uniformly random label, then one of its training "
                             f"names); mean loss over the last tenth {d['final_mean_loss']:.3f}.")
            elif system == "logreg":
                notes.append(f"- {tag}: {d['features']:,} n-gram features, lbfgs stopped after {d['n_iter']} "
                             f"iterations (max_iter {d['max_iter']}, {'converged' if d['converged'] else 'NOT converged'}"
                             f"), scikit-learn {d['sklearn']}.")
            elif system == "majority":
                notes.append(f"- {tag}: always \"{d['label']}\".")
    for system, by_seed in merged.items():
        if all(by_seed.get(seed) for seed in seeds):
            notes.append(f"- charclf {system} with charclf's defaults for it is the same run as charclf's default "
                         f"(same model and training configs), so it is not run twice.")

    title = "# charclf benchmark" + (" (QUICK SMOKE TEST: tiny settings, not a measurement)" if args.quick else "")
    parts = [
        title, "",
        f"Run {started}, with:", "",
        "```", command, "```", "",
        "## Machine", "",
        *[f"- {key}: {value}" for key, value in machine], "",
        "## Protocol", "",
        protocol, "",
        "## Results", "",
        table, "",
        verdict, "",
        "Notes:", "",
        *notes, "",
        "Time figures on shared machines are noisy: compare systems within one run, as ratios.", "",
    ]
    return "\n".join(parts), table + "\n\n" + verdict


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmark.py",
        description="Benchmark charclf against the tutorial's char-RNN, a character n-gram logistic regression and "
                    "the majority baseline, in one run, on charclf's own split.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="systems: default (charclf.train() defaults), " + ", ".join(arch_names()) +
               " (each backbone with charclf's defaults for it), tutorial, logreg, majority",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: $CHARCLF_DATA, else ./data/names)")
    parser.add_argument("--seeds", default="0", help="split seeds, comma-separated (default: 0); several give "
                        "per-seed rows and their mean")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown report to write (default: docs/benchmarks.md; --quick writes nothing "
                             "unless --out is given)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N) (and BLAS threads for scikit-learn) in every system; "
                             "default: torch's default")
    parser.add_argument("--only", default=None, help="comma-separated systems to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny settings for a smoke test: 1 epoch per charclf model, {QUICK_TUTORIAL_STEPS:,} "
                             f"tutorial steps, logistic regression max_iter {QUICK_LOGREG_MAX_ITER}, "
                             f"{QUICK_INFER_NAMES:,} names for inference timing")
    # Internal: run one system in this (child) process and print its result as JSON.
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        args.seed_list = list(dict.fromkeys(int(s) for s in args.seeds.split(",") if s.strip()))
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not args.seed_list or any(s < 0 for s in args.seed_list):
        parser.error(f"--seeds must be non-negative integers, got {args.seeds!r}")
    systems = all_systems()
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in systems]
        if unknown or not wanted:
            parser.error(f"--only: unknown system(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(systems)}")
        args.systems = [s for s in systems if s in wanted]
    else:
        args.systems = list(systems)
    if args.child is not None and (args.child not in systems or args.workdir is None or args.data is None):
        parser.error("--child needs a system name, --workdir and --data")
    if args.data is None:
        args.data = Path(os.environ.get("CHARCLF_DATA") or "data/names")
    args.data = args.data.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)

    from charclf.data import load_dataset, read_label_file, split_dataset
    from charclf.errors import CharclfError

    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    if "logreg" in args.systems:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            print('Error: the logreg system needs scikit-learn: pip install -e ".[bench]" (or leave it out with --only)',
                  file=sys.stderr)
            return 1

    import charclf.config

    machine = machine_description(args.threads)
    default = default_arch()
    has_arch_defaults = hasattr(charclf.config, "ARCH_DEFAULTS")
    log(f"charclf's default backbone: {default}; per-arch defaults: "
        f"{'charclf.config.ARCH_DEFAULTS' if has_arch_defaults else 'none (the dataclass defaults for every arch)'}")

    results: dict[int, dict[str, dict]] = {seed: {} for seed in args.seed_list}
    merged: dict[str, dict[int, bool]] = {}
    sizes: dict[int, dict] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="charclf-bench-") as tmp:
        workdir = Path(tmp)
        try:
            dataset = load_dataset(args.data)
            lines = [line for path in sorted(args.data.glob("*.txt")) if path.is_file()
                     for line in read_label_file(path) if line]
            n_infer = QUICK_INFER_NAMES if args.quick else INFER_NAMES
            names = random.Random(INFER_SEED).choices(lines, k=n_infer)
            (workdir / "inference-names.json").write_text(json.dumps(names), encoding="utf-8")
            for seed in args.seed_list:
                splits = split_dataset(dataset, seed=seed)
                split = {"labels": dataset.labels, **{k: [list(p) for p in v] for k, v in splits.items()}}
                (workdir / f"split-seed{seed}.json").write_text(json.dumps(split), encoding="utf-8")
                sizes[seed] = {"labels": dataset.labels, **{k: len(v) for k, v in splits.items()}}
        except CharclfError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        log(f"data: {args.data} ({len(dataset.labels)} labels, {len(dataset.pairs):,} pairs); "
            + "; ".join(f"seed {s}: {v['train']:,} / {v['val']:,} / {v['test']:,}" for s, v in sizes.items()))

        total = len(args.seed_list) * len(args.systems)
        done = 0
        for seed in args.seed_list:
            split = read_json(workdir / f"split-seed{seed}.json")
            for system in args.systems:
                done += 1
                default_result = results[seed].get("default")
                if system == default and default_result and "resolved" in default_result:
                    same = expected_resolved(system, seed, args.quick, len(dataset.labels)) == default_result["resolved"]
                    merged.setdefault(system, {})[seed] = same
                    if same:
                        log(f"[{done}/{total}] seed {seed}: {system}: the same run as charclf's default; not run again")
                        results[seed][system] = default_result
                        continue
                log(f"[{done}/{total}] seed {seed}: {system} ...")
                began = time.perf_counter()
                if system == "majority":
                    result = run_majority(split)
                else:
                    result = run_child(system, seed, args, workdir)
                results[seed][system] = result
                if "error" in result:
                    failed = True
                    log(f"[{done}/{total}] seed {seed}: {system} FAILED ({result['error']})")
                else:
                    log(f"[{done}/{total}] seed {seed}: {system}: accuracy {result['accuracy']:.4f}, macro-F1 "
                        f"{result['macro_f1']:.4f}, training {result['train_seconds']:.1f} s "
                        f"({time.perf_counter() - began:.1f} s in all)")

    document, summary = build_report(args, args.seed_list, args.systems, results, merged, sizes, machine, default,
                                     has_arch_defaults, started, command)
    print(summary)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document, encoding="utf-8")
        log(f"wrote {out}")
    elif args.quick:
        log("quick mode: no report written (give --out FILE to write one)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
