"""Scoring a model on held-out names: the one scorer used by training, `charclf evaluate`, the
Python API and the benchmark."""

from __future__ import annotations

import numpy as np

from charclf.errors import TrainingDiverged
from charclf.predict.calibration import cross_entropy
from charclf.report.metrics import report


def score(logits, targets: list[int], labels: list[str]) -> dict:
    """(N, n_classes) logits (an array or a CPU tensor) of names whose labels are `targets` ->
    metrics.report's accuracy, macro-F1, per-label scores and confusion matrix, plus the mean
    cross-entropy ("loss") and the logits themselves, as given ("logits")."""
    values = np.asarray(logits, dtype=np.float64)
    if not np.isfinite(values).all():
        raise TrainingDiverged("the model's outputs are not finite numbers")
    result = report(targets, values.argmax(axis=1).tolist() if len(values) else [], labels)
    result["loss"] = cross_entropy(values, np.asarray(targets, dtype=np.int64)) if len(targets) else float("nan")
    result["logits"] = logits
    return result


def evaluate(model, names: list[str], targets: list[int], labels: list[str], alphabet: str, device,
             precision: str = "float32") -> dict:
    """Score a torch `model` on (names, targets) (see score; its logits are a CPU tensor)."""
    from charclf.predict.inference import batched_logits

    return score(batched_logits(model, names, alphabet, device, precision=precision), targets, labels)
