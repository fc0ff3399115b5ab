"""The two steps every run repeats: one epoch of training, and scoring a model on held-out names.
`evaluate` is the one scorer used by training, `charclf evaluate`, the Python API and the benchmark."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from charclf.config import CLASS_WEIGHTINGS
from charclf.errors import CharclfError
from charclf.metrics import report
from charclf.inference import batched_logits


class TrainingDiverged(CharclfError):
    """The loss or the outputs became NaN or infinite; the last good checkpoint is kept."""


def class_weights(counts: list[int], mode: str) -> torch.Tensor | None:
    """Per-label loss weights from the training names per label: (n / count) ** power, scaled so
    that the average name weighs 1 ('none': no weights)."""
    power = CLASS_WEIGHTINGS[mode]
    if power == 0:
        return None
    counts_t = torch.tensor(counts, dtype=torch.float).clamp_min(1)
    weights = (counts_t.sum() / counts_t) ** power
    return weights * counts_t.sum() / (weights * counts_t).sum()


def train_one_epoch(batches: Iterable, step: Callable[[list[str], torch.Tensor], tuple[float, float]], total: int,
                    progress: bool = False, desc: str = "epoch") -> float:
    """Run `step(names, targets)` on every batch; the mean loss per name.

    `step` does the forward, backward and update and returns the batch's summed loss and size
    (summed over all ranks under torchrun)."""
    total_loss = count = 0.0
    bar = tqdm(batches, total=total, desc=desc, leave=False, disable=not progress, file=sys.stderr, unit="batch")
    for names, targets in bar:
        loss_sum, n = step(names, targets)
        if not math.isfinite(loss_sum):
            raise TrainingDiverged(f"the loss is {loss_sum / n}")
        total_loss, count = total_loss + loss_sum, count + n
        bar.set_postfix(loss=f"{loss_sum / n:.3f}")
    return total_loss / max(count, 1)


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
