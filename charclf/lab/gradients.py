"""How much the loss feels each letter: the size of the gradient of the loss with respect to the
input at each time step, ||d loss / d x_t||, averaged over a batch of sequences. When it shrinks
towards the first letter, training cannot learn what the first letter should have done."""

from __future__ import annotations

import copy

import torch
from torch import nn


def gradient_by_step(model: nn.Module, sequences: torch.Tensor, answers: torch.Tensor) -> list[float]:
    """(B, T, letters) one-hot rows and (B,) labels -> T numbers: the mean over the B sequences of
    each sequence's ||d loss / d x_t|| (its own loss: each sequence's input reaches only its own).

    Measured on a float64 copy of the model: a vanishing gradient falls below float32's smallest
    number (1e-45) within a few dozen letters, and would be read as exactly 0."""
    double = copy.deepcopy(model).double().eval()
    rows = sequences.double().requires_grad_(True)
    loss = nn.functional.cross_entropy(double(rows), answers, reduction="sum")
    (grad,) = torch.autograd.grad(loss, rows)  # (B, T, letters)
    return grad.norm(dim=2).mean(dim=0).tolist()

