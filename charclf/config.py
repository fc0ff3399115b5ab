"""The two configs, model shape and training, as plain dataclasses (no torch, so the CLI's help
can show their defaults without importing it). Field names follow torch's own arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCHS = ("gru", "lstm", "rnn")  # the keys of charclf.model.BACKBONES (a test keeps them equal)
POOLINGS = ("last", "max", "last+max")  # how per-letter outputs become one vector per name
CLASS_WEIGHTINGS = ("none", "sqrt", "inverse")


@dataclass
class ModelConfig:
    arch: str
    n_letters: int
    n_classes: int
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.2
    pooling: str = "last+max"

    def __post_init__(self):
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("pooling", self.pooling, POOLINGS)
        for name in ("n_letters", "n_classes", "hidden_size", "num_layers"):
            _check_positive(name, getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-2
    seed: int = 0  # feeds the split, the initial weights and the batch order
    class_weighting: str = "sqrt"  # rare languages weigh more in the loss (for macro-F1)
    label_smoothing: float = 0.05
    clip_grad_norm: float = 1.0  # RNN gradients can spike on long names

    def __post_init__(self):
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check_choice("class_weighting", self.class_weighting, CLASS_WEIGHTINGS)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
