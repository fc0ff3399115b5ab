"""The end of a run: the kept weights scored on the held-out splits, one temperature and the
conformal label sets fitted on validation, the checkpoint saved (a refit's weights when there
is one), then its metric history, curves and ONNX export beside it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from charclf.errors import CheckpointError
from charclf.files.atomic import atomic_write
from charclf.files.export import onnx_beside
from charclf.models.build import build_model
from charclf.models.model import count_parameters
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict import conformal
from charclf.predict.calibration import MIN_CALIBRATION_NAMES, fit_temperature, scores
from charclf.predict.scoring import evaluate
from charclf.report.metrics import majority_baseline
from charclf.training import refit
from charclf.training.run import Run


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def history_paths(checkpoint: Path) -> tuple[Path, Path]:
    """Where the metric history and its curves go: beside the checkpoint."""
    return checkpoint.with_suffix(".history.json"), checkpoint.with_suffix(".curves.png")


def finish(run: Run, refitting: refit.Refit | None = None,
           log: Callable[[str], None] = lambda line: None) -> TrainResult:
    """Score the kept (best) weights on the held-out splits, fit the temperature, save. With a
    refit, its weights at the best epoch are saved instead, scored on test, with the first run's
    validation scores, temperature and label sets (charclf.training.refit)."""
    model = build_model(run.model_config).to(run.device)
    model.load_state_dict(run.progress.best_weights)
    best, weights, seconds, extra = run.progress.best["epoch"], None, run.progress.seconds, {}
    if refitting is not None:
        try:
            weights, extra["refit"] = refitting.weights(best)
        except refit.RefitFailed as e:
            log(f"warning: the refit on train + validation failed ({e}); saved the network trained on train alone")
    if weights is None:
        metrics, calibration = final_metrics(model, run.source, run.device)
    else:
        refitted = build_model(run.model_config).to(run.device)
        refitted.load_state_dict(weights)
        metrics, calibration = final_metrics(refitted, run.source, run.device, first=model)
        seconds += extra["refit"]["waited_seconds"]
        log(f"refit: kept its epoch {best} weights; test accuracy {metrics['test']['accuracy']:.4f} (trained on "
            f"train alone: {metrics['first_run']['test']['accuracy']:.4f})")
    metrics = {"best_epoch": best, "epochs_run": run.progress.epoch, "train_seconds": seconds, **extra, **metrics}
    if run.recipe:
        metrics["recipe"] = run.recipe
    run.save(metrics, calibration, weights)
    if run.keep_first is not None and weights is not None:  # the first run too, with its own scores
        first_metrics, first_calibration = final_metrics(model, run.source, run.device)
        run.save({"best_epoch": best, "epochs_run": run.progress.epoch, "train_seconds": run.progress.seconds,
                  **first_metrics}, first_calibration, path=run.keep_first)
    if run.dist.is_main:
        write_history(run.out, run.progress.history)
        write_onnx(run.out, log)
    return TrainResult(checkpoint=run.out, metrics=metrics, history=run.progress.history)


def final_metrics(model: nn.Module, source, device: torch.device, first: nn.Module | None = None) -> tuple[dict, dict]:
    """(metrics, calibration) of a trained model: val and test scores, the majority baseline, and
    one temperature fitted on validation, judged on test (the argmax is unchanged). `first`: the
    network trained on train alone, when `model` is its refit on train + validation: the
    validation scores, the temperature and the label sets are its (the refit has seen those names)."""
    metrics: dict[str, Any] = {"parameters": count_parameters(model)}
    results = {}
    for split in ("val", "test"):
        names, targets = source.held[split]
        scored = first if split == "val" and first is not None else model
        results[split] = evaluate(scored, names, targets, source.labels, DEFAULT_ALPHABET, device)
        metrics[split] = {key: results[split][key] for key in ("accuracy", "macro_f1", "n")}
    if "offdist" in source.held:  # names from elsewhere, never trained on (charclf.data.extra)
        names, targets = source.held["offdist"]
        offdist = evaluate(model, names, targets, source.labels, DEFAULT_ALPHABET, device)
        metrics["offdist"] = {key: offdist[key] for key in ("accuracy", "macro_f1", "n")}
    if first is not None:
        names, targets = source.held["test"]
        alone = evaluate(first, names, targets, source.labels, DEFAULT_ALPHABET, device)
        metrics["first_run"] = {"test": {key: alone[key] for key in ("accuracy", "macro_f1", "n")}}
    train_counts = Counter(dict(enumerate(source.train_counts)))
    metrics["test_majority_baseline"] = majority_baseline(train_counts, source.held["test"][1], source.labels)
    fitted = metrics["val"]["n"] >= MIN_CALIBRATION_NAMES  # else fit_temperature keeps T = 1
    temperature = fit_temperature(results["val"]["logits"], torch.tensor(source.held["val"][1]))
    calibration = {"temperature": temperature, "fit_on": "val", "n": metrics["val"]["n"],
                   "train_counts": list(source.train_counts),  # for --prior
                   "conformal": conformal.fit(torch.softmax(results["val"]["logits"] / temperature, dim=1),
                                              torch.tensor(source.held["val"][1]))}
    test_targets = torch.tensor(source.held["test"][1])
    calibration["fit_on"] = "val" if fitted else None  # None: too few validation names to fit on
    for when, t in (("before", 1.0), ("after", temperature)):
        test_scores = scores(torch.softmax(results["test"]["logits"] / t, dim=1), test_targets)
        calibration[f"test_{when}"] = {key: test_scores[key] for key in ("ece", "brier", "nll")}
    metrics["calibration"] = {key: value for key, value in calibration.items() if key != "conformal"}
    metrics["label_sets"] = conformal.report(torch.softmax(results["test"]["logits"] / temperature, dim=1),
                                             test_targets, calibration["conformal"])
    return metrics, calibration


def write_onnx(checkpoint: Path, log: Callable[[str], None]) -> None:
    """The checkpoint's ONNX export beside it (charclf.files.export.onnx_beside), so that prediction
    runs on ONNX Runtime, without torch; skipped with a warning where the onnx package is missing."""
    from charclf.extras import available, install_hint
    from charclf.files.export import export_file

    if not available("onnx"):
        log(f"warning: {install_hint('onnx')}; {onnx_beside(checkpoint).name} was not written, so prediction "
            "runs on torch")
        return
    export_file(checkpoint, onnx_beside(checkpoint))


def write_history(checkpoint: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as JSON, and their loss/accuracy curves as a PNG, beside the checkpoint."""
    from charclf.extras import available

    json_path, png_path = history_paths(checkpoint)
    try:
        atomic_write(json_path, lambda f: f.write(json.dumps(history, indent=2).encode()))
        if any("train_loss" in row for row in history) and available("matplotlib"):
            from charclf.report.plots import plot_history

            plot_history(history, png_path)
    except OSError as e:
        raise CheckpointError(f"saved {checkpoint}, but cannot write its history beside it: "
                              f"{e.strerror or e}") from None
