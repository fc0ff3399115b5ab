"""Scoring a model on held-out names: the one scorer used by training, `charclf evaluate`, the
Python API and the benchmark."""

from __future__ import annotations

import torch
from torch import nn

from charclf.errors import TrainingDiverged
from charclf.predict.inference import batched_logits
from charclf.report.metrics import report


def evaluate(model: nn.Module, names: list[str], targets: list[int], labels: list[str], alphabet: str,
             device: torch.device, precision: str = "float32") -> dict:
    """Score `model` on (names, targets): metrics.report's accuracy, macro-F1, per-label scores
    and confusion matrix, plus the mean cross-entropy ("loss") and the (N, n_classes) logits."""
    logits = batched_logits(model, names, alphabet, device, precision=precision)
    if not torch.isfinite(logits).all():
        raise TrainingDiverged("the model's outputs are not finite numbers")
    result = report(targets, logits.argmax(1).tolist(), labels)
    result["loss"] = nn.functional.cross_entropy(logits, torch.tensor(targets)).item() if targets else float("nan")
    result["logits"] = logits
    return result
