"""One epoch of training, the step every run repeats (scoring on held-out names is
charclf.predict.scoring.evaluate)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

import torch
from tqdm import tqdm

from charclf.config import CLASS_WEIGHTINGS
from charclf.errors import TrainingDiverged


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
