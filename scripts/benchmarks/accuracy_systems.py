"""The systems of the accuracy mode (scripts/benchmarks/accuracy.py): their names and settings, and
what each runs in its own process (`accuracy --child SYSTEM`): charclf's models (the PyTorch
tutorial's char-RNN among them: `charclf train --preset tutorial`) and the scikit-learn logistic
regression."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import charclf
from charclf.config import NGRAM
from charclf.threads import usable_cores

from benchmarks.common import peak_rss_mb, predict_file_rates

# charclf.train(arch=...) with defaults_for(arch, **options): system -> (arch, options)
# A system named ...-names also trains on the extra names of --extra-names (charclf.data.extra).
CHARCLF_MODELS = {"gru": ("gru", {}), "gru-names": ("gru", {}), "gru-3": ("gru", {"members": 3}),
                  "best": ("gru", {}), "best-names": ("gru", {}), "lstm": ("lstm", {}), "rnn": ("rnn", {}),
                  "ngram": (NGRAM, {}), "tutorial": ("rnn", {})}
CHARCLF_SYSTEMS = tuple(CHARCLF_MODELS)
SYSTEMS = (*(s for s in CHARCLF_SYSTEMS if s != "tutorial"), "logreg", "logreg-names", "logreg-trainval",
           "logreg-trainval-names", "tutorial", "majority")
WITH_NAMES = tuple(system for system in SYSTEMS if system.endswith("-names"))
LABELS = {  # each system's row in the report
    "gru": "**charclf default: bidirectional GRU with spelling heads**",
    "gru-3": "charclf --members 3 (three default GRUs, probabilities averaged)",
    "best": "charclf --preset best (one default GRU that learnt from five)",
    "lstm": "charclf lstm", "rnn": "charclf rnn (plain tanh RNN)",
    "ngram": "charclf --model ngram (its n-gram baseline, no network)",
    "logreg": "TF-IDF char 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn",
    "logreg-trainval": "TF-IDF + LogisticRegression fitted on train+validation",
    "tutorial": "PyTorch tutorial char-RNN, charclf --preset tutorial (one name per step, SGD, label-first draws)",
    "majority": "always the majority label",
    "gru-names": "charclf default GRU, with the extra names",
    "best-names": "charclf --preset best, with the extra names",
    "logreg-names": "TF-IDF + LogisticRegression fitted on the train split, with the extra names",
    "logreg-trainval-names": "TF-IDF + LogisticRegression fitted on train+validation, with the extra names"}
# The classical peer's own settings (not charclf's).
LOGREG_C, LOGREG_MAX_ITER, QUICK_LOGREG_MAX_ITER = 30.0, 1000, 100
# Inference timing: distinct_names of the dataset's raw lines (the same list for all systems), after a warm-up.
INFER_NAMES, QUICK_INFER_NAMES, WARMUP_NAMES = 100_000, 10_000, 2048


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


def scored_parts(split: dict, predict) -> dict:
    """`predict` (names -> label indices) scored on the test split, and on the off-distribution set
    when the split has one (offdist_accuracy, offdist_macro_f1)."""
    scores = {}
    for part, prefix in (("test", ""), ("offdist", "offdist_")):
        if split.get(part):
            done = scored(split[part], predict([name for name, _ in split[part]]), split["labels"])
            scores.update({f"{prefix}accuracy": done["accuracy"], f"{prefix}macro_f1": done["macro_f1"],
                           f"n_{part}": done["n_test"]})
    return scores


# ----------------------------------------------------------------------------- children
# Each runs in a fresh process, reads the split the parent wrote (charclf's own load_dataset +
# split_dataset), and prints one JSON object on stdout.


def test_scores(clf, split: dict) -> dict:
    """The classifier's test scores by charclf's one scorer (training, `charclf evaluate` and the API use it),
    and on the off-distribution set when the split has one (offdist_accuracy, offdist_macro_f1)."""
    from charclf.predict.scoring import score

    scores = {}
    for part, prefix in (("test", ""), ("offdist", "offdist_")):
        if split.get(part):
            names, targets = [name for name, _ in split[part]], [label for _, label in split[part]]
            done = score(clf.logits(names), targets, split["labels"])
            scores.update({f"{prefix}accuracy": done["accuracy"], f"{prefix}macro_f1": done["macro_f1"],
                           f"n_{part}": done["n"]})
    return scores


def extra_options(system: str, split: dict) -> dict:
    """TrainConfig's extra_* options for a ...-names system (from the parent's --extra-names), else none."""
    return split["extra_options"] if system.endswith("-names") else {}


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
    extra = extra_options(args.child, split)
    model_options, config = defaults_for(arch, seed=args.seed, epochs=1 if args.quick else None, **options, **extra)
    out = args.workdir / f"{args.child}-seed{args.seed}.pt"
    started = time.perf_counter()
    if args.child.startswith("best"):  # the recipe's settings are its own (--quick does not shorten it)
        from charclf.training.recipes import train_best

        result = train_best(args.data, out, arch, seed=args.seed, progress=False,
                            log=lambda line: log(line, args.child), extra=extra)
    elif args.child == "tutorial":  # the recipe's settings (--quick: one epoch of one name per step)
        from charclf.training.recipes import train_tutorial

        result = train_tutorial(args.data, out, seed=args.seed, progress=False, epochs=1 if args.quick else None,
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


def child_logreg(args, split: dict, names: list[str]) -> dict:
    # No torch here: this process's memory is scikit-learn's alone.
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    from charclf.names.text import fold

    fit_on = split["train"] + (split["val"] if args.child.startswith("logreg-trainval") else [])
    weight = split["extra_options"]["extra_weight"] if args.child.endswith("-names") else 0
    pool = split["extra"] if weight > 0 else []  # each extra name weighs `weight`
    weights = [1.0] * len(fit_on) + [weight] * len(pool) if pool else None
    fit_on = fit_on + pool
    max_iter = QUICK_LOGREG_MAX_ITER if args.quick else LOGREG_MAX_ITER
    with threadpool_limits(limits=args.threads):
        started = time.perf_counter()
        pipeline = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5)),
                                 LogisticRegression(C=LOGREG_C, max_iter=max_iter))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit([name for name, _ in fit_on], [label for _, label in fit_on],
                         **({"logisticregression__sample_weight": weights} if weights else {}))
        train_seconds, peak = time.perf_counter() - started, peak_rss_mb(children=True)
        scores = scored_parts(split, lambda names: [int(p) for p in pipeline.predict(names)])
        # Same work as charclf's predict: fold the raw names, then probabilities for every label.
        rate = names_per_second(lambda chunk: pipeline.predict_proba([fold(name) for name in chunk]), names)
    n_iter = int(max(pipeline[-1].n_iter_))
    return {
        **scores, "train_seconds": train_seconds, "peak_train_mb": peak,
        "names_per_second": rate, "inference_names": len(names),
        "details": {"sklearn": sklearn.__version__, "features": len(pipeline[0].vocabulary_), "n_iter": n_iter,
                    "max_iter": max_iter, "converged": n_iter < max_iter, "fitted_pairs": len(fit_on)},
    }
