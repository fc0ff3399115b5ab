"""charclf's models against their peers on one machine, in one run, on charclf's own split.

Systems (names for --only), in this order:

  gru              charclf's default model, the bidirectional GRU
  gru-3            charclf --members 3: three default GRUs, their probabilities averaged
  best             charclf --preset best: one default GRU that learnt from an ensemble of five
                   (charclf.training.recipes.train_best; the model charclf ships)
  lstm, rnn        charclf's other recurrent backbones
  ngram            charclf --model ngram: its n-gram baseline, no network
                   (all five: charclf.train() with charclf.config.defaults_for(arch, seed=seed), nothing else)
  logreg           TF-IDF character 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn,
                   fitted on the train split
  logreg-trainval  the same, fitted on train + validation (it does no model selection, so the
                   validation split is free training data: the fair-use variant of the protocol)
  tutorial         the PyTorch tutorial's char-RNN: one name per step, SGD, class-uniform sampling
  majority         always the most frequent training label

Every system but majority runs in a fresh process of this program (`accuracy --child SYSTEM`, so that
its peak memory is its own), with --threads threads, and reports back as one JSON line on stdout. The
split is the README's held-out protocol (charclf.data.dataset.split_dataset); charclf's models are
also scored by name length, by their conformal label sets, and (the recurrent ones) in bfloat16.
Writes a markdown report and a JSON file of every result:

  python scripts/benchmark.py accuracy                  # everything, split seed 0 -> docs/benchmarks.md (+ .json)
  python scripts/benchmark.py accuracy --seeds 0,1,2    # per-seed rows and their mean
  python scripts/benchmark.py accuracy --quick --out /tmp/bench-quick.md   # smoke test (no --out: writes nothing)

scikit-learn is needed for logreg and logreg-trainval: pip install -e ".[bench]".
"""

from __future__ import annotations

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

import charclf
from charclf.config import NGRAM
from charclf.threads import usable_cores

from benchmarks.common import (
    BENCHMARKS_MD,
    DRIVER,
    UsageError,
    data_dir,
    dataset_lines,
    distinct_names,
    load_average,
    md_table,
    peak_rss_mb,
    predict_file_rates,
    thread_env,
)

# charclf.train(arch=...) with defaults_for(arch, **options): system -> (arch, options)
CHARCLF_MODELS = {"gru": ("gru", {}), "gru-3": ("gru", {"members": 3}), "best": ("gru", {}), "lstm": ("lstm", {}),
                  "rnn": ("rnn", {}), "ngram": (NGRAM, {})}
CHARCLF_SYSTEMS = tuple(CHARCLF_MODELS)
SYSTEMS = (*CHARCLF_SYSTEMS, "logreg", "logreg-trainval", "tutorial", "majority")
LABELS = {  # each system's row in the report
    "gru": "**charclf default: bidirectional GRU with spelling heads**",
    "gru-3": "charclf --members 3 (three default GRUs, probabilities averaged)",
    "best": "charclf --preset best (one default GRU that learnt from five)",
    "lstm": "charclf lstm", "rnn": "charclf rnn (plain tanh RNN)",
    "ngram": "charclf --model ngram (its n-gram baseline, no network)",
    "logreg": "TF-IDF char 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn",
    "logreg-trainval": "same, fitted on train+validation",
    "tutorial": "PyTorch tutorial char-RNN (one name per step, SGD, class-uniform sampling)",
    "majority": "always the majority label"}
# The peers' own settings (not charclf's): the tutorial's reference method, and the classical peer.
TUTORIAL_STEPS, QUICK_TUTORIAL_STEPS, TUTORIAL_LR, TUTORIAL_HIDDEN = 100_000, 2_000, 0.005, 128
LOGREG_C, LOGREG_MAX_ITER, QUICK_LOGREG_MAX_ITER = 30.0, 1000, 100
# Inference timing: distinct_names of the dataset's raw lines (the same list for all systems), after a warm-up.
INFER_NAMES, QUICK_INFER_NAMES, WARMUP_NAMES = 100_000, 10_000, 2048
MEAN_KEYS = ("accuracy", "macro_f1", "train_seconds", "names_per_second", "cli_names_per_second",
             "cli_names_per_second_cores", "peak_train_mb")
# The recurrent models again with --precision bfloat16 (charclf.predict.precision), beside float32's.
BFLOAT16_KEYS = ("accuracy", "macro_f1", "cli_names_per_second", "cli_names_per_second_cores")
MEAN_KEYS += tuple(f"{key}_bfloat16" for key in BFLOAT16_KEYS)


def log(message: str, system: str = "") -> None:
    print(f"[bench{':' + system if system else ''}] {message}", file=sys.stderr, flush=True)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def names_per_second(predict, names: list[str]) -> float:
    """The rate of `predict` (a function of a list of raw names) after a warm-up."""
    predict(names[:WARMUP_NAMES])
    started = time.perf_counter()
    predict(names)
    return len(names) / (time.perf_counter() - started)


def scored(test: list, predicted: list[int], labels: list[str]) -> dict:
    from charclf.report.metrics import report

    scores = report([label for _, label in test], predicted, labels)
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "n_test": scores["n"]}


# ----------------------------------------------------------------------------- children
# Each runs in a fresh process, reads the split the parent wrote (charclf's own load_dataset +
# split_dataset), and prints one JSON object on stdout.


def test_scores(clf, split: dict) -> dict:
    """The classifier's test scores by charclf's one scorer (training, `charclf evaluate` and the API use it)."""
    from charclf.predict.scoring import score

    names, targets = [name for name, _ in split["test"]], [label for _, label in split["test"]]
    done = score(clf.logits(names), targets, split["labels"])
    return {"accuracy": done["accuracy"], "macro_f1": done["macro_f1"], "n_test": done["n"]}


def predict_file_keys(checkpoint: Path, names: list[str], workdir: Path, threads: int, precisions: tuple) -> dict:
    """cli_names_per_second[_cores][_bfloat16]: `predict --file` rates with `threads` threads and with one
    per usable core (charclf's own choice for a file on a quiet machine), in each precision."""
    rates = {}
    for key, count in (("cli_names_per_second", threads), ("cli_names_per_second_cores", usable_cores())):
        by_precision = predict_file_rates(names, workdir, count, precisions, runs=2, checkpoint=checkpoint)
        rates.update({key + ("" if p == "float32" else f"_{p}"): rate for p, rate in by_precision.items()})
    return rates


def resolved_configs(checkpoint: Path) -> dict:
    """The model and training configs the checkpoint records (the training one without run info)."""
    from charclf.config import TrainConfig
    from charclf.files.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    return {"model": dataclasses.asdict(ck.model_config),
            "train": {f.name: ck.train_config.get(f.name) for f in dataclasses.fields(TrainConfig)}}


def child_charclf(args, split: dict, names: list[str]) -> dict:
    from charclf.config import defaults_for
    from charclf.predict.loading import load as load_model
    from charclf.training.comparison import accuracy_by_length

    arch, options = CHARCLF_MODELS[args.child]
    model_options, config = defaults_for(arch, seed=args.seed, epochs=1 if args.quick else None, **options)
    out = args.workdir / f"{args.child}-seed{args.seed}.pt"
    started = time.perf_counter()
    if args.child == "best":  # the recipe's settings are its own (--quick does not shorten it)
        from charclf.training.recipes import train_best

        result = train_best(args.data, out, arch, seed=args.seed, progress=False,
                            log=lambda line: log(line, args.child))
    else:
        result = charclf.train(args.data, out, arch=arch, model_options=model_options, config=config,
                               progress=False, log=lambda line: log(line, args.child))
    # With its children: training's refit runs in a process beside it (charclf.training.refit).
    train_seconds, peak = time.perf_counter() - started, peak_rss_mb(children=True)
    if args.keep_models:
        keep(out, args.keep_models)
    clf = load_model(out, device="cpu")  # scored by charclf's one scorer, on the parent's split
    if clf.labels != split["labels"]:
        raise SystemExit(f"Error: the model's labels {clf.labels} are not the split's {split['labels']}")
    scores, metrics = test_scores(clf, split), result.metrics
    if abs(scores["accuracy"] - metrics["test"]["accuracy"]) > 1e-9:
        log(f"note: test accuracy on CPU {scores['accuracy']:.4f} differs from training's own "
            f"{metrics['test']['accuracy']:.4f}", args.child)
    recurrent = arch != NGRAM  # the n-gram baseline always predicts in float32
    in_bfloat16 = test_scores(load_model(out, device="cpu", precision="bfloat16"), split) if recurrent else {}
    return {
        **scores, "train_seconds": train_seconds, "peak_train_mb": peak,
        "names_per_second": names_per_second(clf.predict, names), "inference_names": len(names),
        **predict_file_keys(out, names, args.workdir, args.threads, ("float32", "bfloat16")[: 1 + recurrent]),
        **{f"{key}_bfloat16": in_bfloat16[key] for key in ("accuracy", "macro_f1") if in_bfloat16},
        "by_length": accuracy_by_length(out, args.data, device="cpu"),
        "label_sets": metrics.get("label_sets"),  # conformal sets' test coverage (charclf.predict.conformal)
        "resolved": resolved_configs(out),
        "details": {"best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
                    "parameters": metrics.get("parameters"), "lbfgs_iterations": metrics.get("lbfgs_iterations"),
                    "epoch_seconds": metrics.get("train_seconds"), "device": clf.checkpoint.train_config.get("device")},
    }


def keep(checkpoint: Path, folder: Path) -> None:
    """--keep-models: a copy of the checkpoint and of its .onnx export in `folder`."""
    import shutil

    from charclf.files.export import onnx_beside

    folder.mkdir(parents=True, exist_ok=True)
    for path in (checkpoint, onnx_beside(checkpoint)):
        if path.is_file():
            shutil.copy2(path, folder / path.name)


def tutorial_rnn(n_letters: int, hidden_size: int, n_classes: int):
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


def train_tutorial(model, split: dict, steps: int, seed: int) -> float:
    """The tutorial's training: each step a uniformly random label, then one of its training names,
    NLLLoss and plain SGD. Returns the mean loss over the last tenth of the steps."""
    import torch

    from charclf.data.tensors import encode
    from charclf.names.text import DEFAULT_ALPHABET

    n_labels, rng = len(split["labels"]), random.Random(seed)
    criterion, optimizer = torch.nn.NLLLoss(), torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR)
    by_label: list[list[torch.Tensor]] = [[] for _ in range(n_labels)]
    for name, label in split["train"]:
        by_label[label].append(encode(name, DEFAULT_ALPHABET))
    targets = [torch.tensor([label]) for label in range(n_labels)]
    model.train()
    started, running, recent = time.perf_counter(), 0.0, 0
    for step in range(1, steps + 1):
        label = rng.randrange(n_labels)
        loss = criterion(model(rng.choice(by_label[label])), targets[label])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running, recent = running + loss.item(), recent + 1
        if step % max(1, steps // 10) == 0 or step == steps:
            log(f"step {step:>7}/{steps}  mean loss {running / recent:.4f}  {time.perf_counter() - started:.1f} s",
                "tutorial")
            last_loss, running, recent = running / recent, 0.0, 0
    return last_loss


def child_tutorial(args, split: dict, names: list[str]) -> dict:
    import torch

    from charclf.data.tensors import encode
    from charclf.names.text import DEFAULT_ALPHABET

    steps = QUICK_TUTORIAL_STEPS if args.quick else TUTORIAL_STEPS
    torch.manual_seed(args.seed)
    model = tutorial_rnn(len(DEFAULT_ALPHABET), TUTORIAL_HIDDEN, len(split["labels"]))
    started = time.perf_counter()
    last_loss = train_tutorial(model, split, steps, args.seed)
    train_seconds, peak = time.perf_counter() - started, peak_rss_mb(children=True)
    model.eval()  # the tutorial's way of predicting: one name at a time, encoded on the fly
    test = split["test"]
    with torch.no_grad():
        for name, _ in test[:50]:  # warm-up
            model(encode(name, DEFAULT_ALPHABET)).argmax(1).item()
        started = time.perf_counter()
        predicted = [model(encode(name, DEFAULT_ALPHABET)).argmax(1).item() for name, _ in test]
        elapsed = time.perf_counter() - started
    return {
        **scored(test, predicted, split["labels"]), "train_seconds": train_seconds,
        "names_per_second": len(test) / elapsed, "inference_names": len(test),
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
        train_seconds, peak = time.perf_counter() - started, peak_rss_mb(children=True)
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
    if args.child not in SYSTEMS or args.child == "majority" or args.workdir is None:
        raise UsageError(f"--child must be one of {', '.join(SYSTEMS[:-1])}, with --workdir")
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON answer only
            split = read_json(args.workdir / f"split-seed{args.seed}.json")
            names = read_json(args.workdir / "inference-names.json")
            if not args.child.startswith("logreg"):  # (the logistic regression's process imports no torch)
                import torch

                torch.set_num_threads(args.threads)
            child = {"logreg": child_logreg, "logreg-trainval": child_logreg, "tutorial": child_tutorial}
            result = child.get(args.child, child_charclf)(args, split, names)
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
    command = [sys.executable, str(DRIVER), "accuracy", "--child", system, "--seed", str(seed), "--data",
               str(args.data), "--workdir", str(workdir), "--threads", str(args.threads), *["--quick"] * args.quick]
    if args.keep_models:
        command += ["--keep-models", str(args.keep_models.resolve())]
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
    test = split["test"]
    return {"system": "majority", "seed": seed, **scored(test, [majority] * len(test), split["labels"]),
            "train_seconds": time.perf_counter() - started, "names_per_second": None, "peak_train_mb": None,
            "details": {"label": split["labels"][majority]}}


def prepare_data(args, workdir: Path) -> dict[int, dict]:
    """Write each seed's split and the inference names for the children; return the split sizes."""
    from charclf.data.dataset import load_dataset, split_dataset

    dataset = load_dataset(args.data)
    names = distinct_names(dataset_lines(args.data), QUICK_INFER_NAMES if args.quick else INFER_NAMES)
    (workdir / "inference-names.json").write_text(json.dumps(names), encoding="utf-8")
    sizes = {}
    for seed in args.seeds:
        splits = split_dataset(dataset, seed=seed)
        split = {"labels": dataset.labels, **{k: [list(p) for p in v] for k, v in splits.items()}}
        (workdir / f"split-seed{seed}.json").write_text(json.dumps(split), encoding="utf-8")
        sizes[seed] = {"labels": len(dataset.labels), **{k: len(v) for k, v in splits.items()}}
    log(f"data: {args.data} ({len(dataset.labels)} labels, {len(dataset.pairs):,} pairs); "
        + "; ".join(f"seed {s}: {v['train']:,} / {v['val']:,} / {v['test']:,}" for s, v in sizes.items()))
    return sizes


def run_all(args, workdir: Path) -> dict[int, dict[str, dict]]:
    results: dict[int, dict[str, dict]] = {seed: {} for seed in args.seeds}
    total, done = len(args.seeds) * len(args.systems), 0
    for seed in args.seeds:
        for system in args.systems:
            done, began = done + 1, time.perf_counter()
            log(f"[{done}/{total}] seed {seed}: {system} ...")
            r = results[seed][system] = (run_majority(read_json(workdir / f"split-seed{seed}.json"), seed)
                                         if system == "majority" else run_child(system, seed, args, workdir))
            log(f"[{done}/{total}] seed {seed}: {system}" + (f" FAILED ({r['error']})" if "error" in r else
                f": accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}, training {r['train_seconds']:.1f} s "
                f"({time.perf_counter() - began:.1f} s in all)"))
    return results


def machine_description(threads: int) -> list[tuple[str, str]]:
    import importlib.metadata

    import torch

    from charclf.predict.precision import native_bfloat16

    cpu, sklearn_version, ram = "", "not installed", "unknown"
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        sklearn_version = importlib.metadata.version("scikit-learn")
    with contextlib.suppress(ValueError, OSError, AttributeError):  # no sysconf: not Unix
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    return [
        ("CPU", cpu or platform.processor() or platform.machine()),
        ("cores", f"{os.cpu_count()} ({usable_cores()} usable by this process)"),
        ("threads", f"{threads} per system (--threads): torch.set_num_threads in the torch runs, threadpoolctl "
                    f"limits for scikit-learn, CHARCLF_THREADS and OMP_NUM_THREADS for `predict --file`"),
        ("RAM", ram),
        ("load average", f"{load_average()} (1, 5, 15 min, at the start)"),
        ("bfloat16 instructions (AVX512-BF16 or AMX)", "yes" if native_bfloat16() else "no: torch emulates them"),
        ("Python", platform.python_version()), ("torch", str(torch.__version__)),
        ("scikit-learn", sklearn_version), ("OS", platform.platform()),
    ]


# ----------------------------------------------------------------------------- report


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def fmt(value: float | None, kind: str) -> str:
    """A score to 3 decimals, seconds to 1 (2 under 0.1), names/s and MB whole; None as "-"."""
    if value is None or kind not in ("score", "seconds"):
        return "-" if value is None else f"{value:,.0f}"
    return f"{value:.3f}" if kind == "score" else f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"


def over_seeds(seeds: list[int], per_seed: str = "") -> str:
    """"seed 0", or "mean over seeds 0, 1, 2" (and `per_seed`)."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}{per_seed}"


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
    header = ["system", "test accuracy", "macro-F1", "training s", "inference names/s", "`predict --file` names/s",
              f"`predict --file` names/s, {usable_cores()} threads", "peak training memory (MB)"]

    def row(label: str, r: dict, bold: bool = False) -> list[str]:
        score = (lambda v: f"**{fmt(v, 'score')}**") if bold else (lambda v: fmt(v, "score"))
        return [label, score(r["accuracy"]), score(r["macro_f1"]), fmt(r["train_seconds"], "seconds"),
                fmt(r["names_per_second"], "rate"), fmt(r.get("cli_names_per_second"), "rate"),
                fmt(r.get("cli_names_per_second_cores"), "rate"), fmt(r["peak_train_mb"], "mb")]

    rows = []
    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            label = LABELS[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            rows.append([label, f"failed ({r['error']})", *["-"] * 6] if "error" in r else row(label, r))
        if len(seeds) > 1 and system in means:
            label = f"**{LABELS[system].strip('*')}, mean of seeds {', '.join(map(str, seeds))}**"
            rows.append(row(label, means[system], bold=True))
    return "\n".join(md_table(header, rows))


def length_table(seeds: list[int], means: dict) -> str | None:
    shown = [s for s in CHARCLF_SYSTEMS if "by_length" in means.get(s, {})]
    if not shown:
        return None
    groups = means[shown[0]]["by_length"]
    header = [f"{group} letters (n = {' / '.join(f'{n:,}' for n in g['n'])})" for group, g in groups.items()]
    rows = [[LABELS[s], *(fmt(g["accuracy"], "score") for g in means[s]["by_length"].values())] for s in shown]
    return ("\n".join(md_table(["system", *header], rows))
            + f"\n\nn: test names in the group ({over_seeds(seeds, '; n per seed')}).")


def label_set_table(seeds: list[int], systems: list[str], results: dict) -> str | None:
    """Each charclf model's conformal label sets on the test split: coverage and mean size per level."""
    shown = [s for s in systems if all(results[seed][s].get("label_sets") for seed in seeds)]
    if not shown:
        return None
    levels = [row["coverage_target"] for row in results[seeds[0]][shown[0]]["label_sets"]]
    header = [cell for level in levels for cell in (f"{level:.0%}: coverage", "mean size")]
    rows = []
    for system in shown:
        sets = [results[seed][system]["label_sets"] for seed in seeds]
        rows.append([LABELS[system], *(cell for i in range(len(levels)) for cell in (
            fmt(mean([r[i]["coverage"] for r in sets]), "score"), f"{mean([r[i]['mean_size'] for r in sets]):.2f}"))])
    return "\n".join(md_table(["system", *header], rows)) + (
        f"\n\nConformal label sets ({over_seeds(seeds)}), thresholds fitted on the validation split at save time "
        "(charclf.predict.conformal); coverage is the share of test names whose set holds the true label.")


def precision_table(seeds: list[int], means: dict) -> str | None:
    """The recurrent models in float32 (their default) and bfloat16: test scores and `predict --file` rates."""
    shown = [s for s in CHARCLF_SYSTEMS if means.get(s, {}).get("accuracy_bfloat16") is not None]
    if not shown:
        return None
    header = ["system", "accuracy float32 / bfloat16", "macro-F1 float32 / bfloat16",
              "`predict --file` names/s, 1 thread, float32 / bfloat16", f"the same, {usable_cores()} threads"]
    columns = (("accuracy", "score"), ("macro_f1", "score"), ("cli_names_per_second", "rate"),
               ("cli_names_per_second_cores", "rate"))
    pair = lambda m, key, kind: f"{fmt(m[key], kind)} / {fmt(m[key + '_bfloat16'], kind)}"  # noqa: E731
    rows = [[LABELS[s], *(pair(means[s], key, kind) for key, kind in columns)] for s in shown]
    return "\n".join(md_table(header, rows)) + (f"\n\nThe same trained models predicting with `--precision "
                                                f"bfloat16` ({over_seeds(seeds)}; charclf.predict.precision): "
                                                "float32 is the default.")


def verdict(seeds: list[int], means: dict, quick: bool, results: dict) -> str:
    text = ("**Does charclf's recurrent model (purely recurrent, no n-gram inside) beat the n-gram logistic "
            "regression on both accuracy and macro-F1?**")
    peers = [(p, how) for p, how in (("logreg", "fitted on the train split"),
                                     ("logreg-trainval", "fitted on train+validation")) if p in means]
    shown = [system for system in ("gru", "gru-3", "best") if system in means]
    if not shown or not peers:
        return text + (" Not measured in this run (it needs `gru`, `gru-3` or `best`, and `logreg` or "
                       "`logreg-trainval`).")
    for system in shown:
        g = means[system]
        text += f" **{LABELS[system].strip('*')}:**"
        for peer, how in peers:
            p = means[peer]
            beats = g["accuracy"] > p["accuracy"] and g["macro_f1"] > p["macro_f1"]
            text += (f" Against the logistic regression {how}: **{'yes' if beats else 'no'}** (accuracy "
                     f"{g['accuracy']:.3f} vs {p['accuracy']:.3f}, macro-F1 {g['macro_f1']:.3f} vs "
                     f"{p['macro_f1']:.3f}{every_seed(seeds, system, peer, results)}).")
    listed = ", ".join(map(str, seeds))
    text += f" ({f'Split seed {listed}' if len(seeds) == 1 else f'Means over split seeds {listed}'}.)"
    return text + (" (Quick smoke-test settings: these numbers measure nothing.)" if quick else "")


def every_seed(seeds: list[int], system: str, peer: str, results: dict) -> str:
    """With several split seeds: on how many of them `system` beat `peer` on both scores."""
    pairs = [(results[seed].get(system, {}), results[seed].get(peer, {})) for seed in seeds if seed in results]
    pairs = [(a, b) for a, b in pairs if "accuracy" in a and "accuracy" in b]
    if len(seeds) < 2 or len(pairs) < len(seeds):
        return ""
    ahead = sum(a["accuracy"] > b["accuracy"] and a["macro_f1"] > b["macro_f1"] for a, b in pairs)
    return f"; ahead on both on {ahead} of the {len(seeds)} split seeds"


def protocol(args, sizes: dict) -> str:
    from charclf.data.dataset import SPLIT_FRACTIONS

    size_text = "; ".join(f"{s['train']:,} / {s['val']:,} / {s['test']:,} train / validation / test pairs for "
                          f"seed {seed}" for seed, s in sizes.items())
    cut = "/".join(f"{fraction * 100:.0f}" for fraction in SPLIT_FRACTIONS)
    n_infer = QUICK_INFER_NAMES if args.quick else INFER_NAMES
    return (
        f"Every system trains on the train split made by charclf's own `load_dataset` + `split_dataset(seed)` "
        f"(names folded to ASCII, duplicate (name, label) pairs collapsed, unique name strings shuffled and cut "
        f"{cut} so that no name text is in two splits: {size_text}) and is scored on the test split with "
        f"`charclf.report.metrics.report` (accuracy; macro-F1 = mean of the per-label F1 over all "
        f"{next(iter(sizes.values()))['labels']} labels). charclf's models pick their best epoch on the "
        f"validation split; the logistic regression, which selects nothing, is shown both fitted on the train "
        f"split alone and on train + validation. Each charclf model takes its settings from "
        f"`charclf.config.defaults_for(arch, seed=seed)` and nothing else. The systems run one after another on "
        f"this machine, each in a fresh subprocess with {args.threads} thread(s): training s is the wall time of "
        f"the training call, peak training memory is that process's peak RSS when training ends (interpreter and "
        f"libraries included), and inference names/s is measured on the loaded model after a warm-up (charclf: "
        f"`load_model(path, device='cpu').predict` on {n_infer:,} different names, each the first half of a "
        f"raw dataset line drawn at random joined to the second half of another (charclf runs a repeated name "
        f"once, so repeats would time nothing); "
        f"logistic regression: folding + `predict_proba` on the same names; tutorial: its one-name-at-a-time loop "
        f"over the test names). `predict --file` names/s is the command itself on those lines, start-up and model "
        f"loading excluded: (N - 1) / (time for N names - time for one name), each the best of two runs, output "
        f"to /dev/null, with {args.threads} thread(s) and again with one per usable core ({usable_cores()}) "
        f"(\"-\": N names did not outlast one by a tenth of its time, too few to time). "
        f"Accuracy by name length is `charclf.training.comparison.accuracy_by_length` on the test split."
    )


def note(system: str, r: dict) -> str | None:
    """One line on how this run of `system` went (its settings, iterations, size)."""
    d = r.get("details", {})
    if "resolved" in r:
        configs = {**{k: v for k, v in r["resolved"]["model"].items() if k not in ("n_letters", "n_classes")},
                   **{k: v for k, v in r["resolved"]["train"].items() if k != "seed"}}
        lbfgs = f", {d['lbfgs_iterations']} L-BFGS iterations" if d.get("lbfgs_iterations") else ""
        return (f"{', '.join(f'{k}={v}' for k, v in configs.items())}; best epoch {d['best_epoch']} of "
                f"{d['epochs_run']}{lbfgs}, {d['parameters']:,} parameters, trained on {d['device']} "
                f"({fmt(d['epoch_seconds'], 'seconds')} s of it in the fitting itself).")
    if system == "tutorial":
        return (f"tanh RNN cell (i2h on concat(letter, hidden), h2o, LogSoftmax), hidden {d['hidden_size']}, "
                f"{d['parameters']:,} parameters, NLLLoss, plain SGD lr {d['lr']}, {d['steps']:,} steps of one name "
                f"(a uniformly random label, then one of its training names); mean loss over the last tenth "
                f"{d['final_mean_loss']:.3f}.")
    if system.startswith("logreg"):
        return (f"fitted on {d['fitted_pairs']:,} pairs, {d['features']:,} n-gram features, lbfgs stopped after "
                f"{d['n_iter']} iterations (max_iter {d['max_iter']}, "
                f"{'converged' if d['converged'] else 'NOT converged'}), scikit-learn {d['sklearn']}.")
    return f"always \"{d['label']}\"." if system == "majority" else None


def notes(seeds: list[int], systems: list[str], results: dict) -> list[str]:
    lines = []
    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            line = None if "error" in r else note(system, r)
            if line:
                lines.append(f"- {LABELS[system]}{f', seed {seed}' if len(seeds) > 1 else ''}: {line}")
    return lines


def build_report(args, results: dict, sizes: dict, machine: list, started: str, command: str) -> tuple[str, str, dict]:
    """(the markdown document, what goes to stdout, the JSON record)."""
    seeds, systems = args.seeds, args.systems
    means = mean_results(seeds, systems, results)
    table, by_length = results_table(seeds, systems, results, means), length_table(seeds, means)
    answer = verdict(seeds, means, args.quick, results)
    title = "# charclf benchmark" + (" (QUICK SMOKE TEST: tiny settings, not a measurement)" if args.quick else "")
    parts = [title, "", f"Run {started}, with:", "", "```", command, "```", "", "## Machine", "",
             *[f"- {key}: {value}" for key, value in machine], "", "## Protocol", "", protocol(args, sizes), "",
             "## Results", "", table, "", answer, ""]
    for heading, section in (("### Test accuracy by name length", by_length),
                             ("### Precision: float32 and bfloat16", precision_table(seeds, means)),
                             ("### Conformal label sets", label_set_table(seeds, systems, results))):
        parts += [heading, "", section, ""] if section else []
    parts += ["Notes:", "", *notes(seeds, systems, results), "",
              "Time figures on shared machines are noisy: compare systems within one run, as ratios.", ""]
    summary = "\n\n".join([table, answer, *([by_length] if by_length else [])])
    record = {"command": command, "started": started, "data": str(args.data), "quick": args.quick,
              "threads": args.threads, "seeds": seeds, "systems": systems, "machine": dict(machine),
              "sizes": sizes, "results": {str(seed): results[seed] for seed in seeds}, "means": means}
    return "\n".join(parts), summary, record


OTHER_SECTIONS = "<!-- sections written by other scripts -->"


def with_other_sections(path: Path | None, document: str) -> str:
    """This report, then whatever the report at `path` holds below OTHER_SECTIONS (the sections that
    the other modes of scripts/benchmark.py and people add), kept."""
    kept = ""
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
        kept = text[text.index(OTHER_SECTIONS):] if OTHER_SECTIONS in text else ""
    return document.rstrip("\n") + "\n\n" + (kept or OTHER_SECTIONS + "\n")


def chosen_systems(only: str | None) -> list[str]:
    """--only's systems in SYSTEMS' order (all by default); scikit-learn is checked for the logreg ones."""
    wanted = [s.strip() for s in (only or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown or not wanted:
        raise UsageError(f"--only: unknown system(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(SYSTEMS)}")
    systems = [s for s in SYSTEMS if s in wanted]
    if any(s.startswith("logreg") for s in systems) and importlib.util.find_spec("sklearn") is None:
        raise UsageError('logreg needs scikit-learn: pip install -e ".[bench]" (or leave it out with --only)')
    return systems


def run(args) -> int:
    from charclf.errors import CharclfError

    args.systems = None if args.child else chosen_systems(args.only)
    args.data = data_dir(args.data)
    if args.child:
        return child_main(args)
    command = "python " + shlex.join(sys.argv)
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
    out = args.out or (None if args.quick else BENCHMARKS_MD)
    json_out = args.json_out or (out.with_suffix(".json") if out else None)
    for path, text in ((out, with_other_sections(out, document)), (json_out, json.dumps(record, indent=2) + "\n")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            log(f"wrote {path}")
    if out is None and json_out is None:
        log("quick mode: nothing written (give --out FILE to write the report and its JSON)")
    return 1 if any("error" in r for by_system in results.values() for r in by_system.values()) else 0
