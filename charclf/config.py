"""The two configs, model shape and training, as plain dataclasses (no torch, so the CLI's help
can show their defaults without importing it). Field names follow torch's own arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

ARCHS = ("gru", "lstm", "rnn")  # the keys of charclf.model.BACKBONES (a test keeps them equal)
POOLINGS = ("last", "max", "last+max")  # how per-letter outputs become one vector per name
CLASS_WEIGHTINGS = ("none", "sqrt", "inverse")

# What each backbone gets on top of the dataclass defaults below, tuned on the validation split
# (see docs/tuning.md). Options given explicitly win. Every backbone gets the n-gram part and no
# class weights: a small one-directional RNN beside the n-grams is as accurate as a big two-way
# one, and trains and predicts several times faster.
_SHARED = {"ngram_buckets": 1 << 18, "class_weighting": "none"}
ARCH_DEFAULTS: dict[str, dict] = {
    "gru": {"hidden_size": 64, "bidirectional": False, "epochs": 30, "lr": 6e-3, "clip_grad_norm": 1.0},
    "lstm": {"hidden_size": 64, "bidirectional": False, "epochs": 20, "lr": 6e-3, "clip_grad_norm": 5.0},
    "rnn": {"hidden_size": 96, "bidirectional": False, "epochs": 30, "lr": 3e-3, "clip_grad_norm": 1.0},
}
ARCH_DEFAULTS = {arch: {**_SHARED, **options} for arch, options in ARCH_DEFAULTS.items()}


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
    embedding_dim: int = 48  # letters -> nn.Embedding of this width (0: one-hot letters straight into the RNN)
    # A linear model of hashed character 1..ngram_max_n-grams beside the RNN (0 buckets: none).
    ngram_buckets: int = 0
    ngram_max_n: int = 5

    def __post_init__(self):
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("pooling", self.pooling, POOLINGS)
        if self.ngram_buckets < 0:
            raise ValueError(f"ngram_buckets must be at least 0, got {self.ngram_buckets}")
        _check_positive("ngram_max_n", self.ngram_max_n)
        if self.embedding_dim < 0:
            raise ValueError(f"embedding_dim must be at least 0, got {self.embedding_dim}")
        for name in ("n_letters", "n_classes", "hidden_size", "num_layers"):
            _check_positive(name, getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainConfig:
    # The defaults are the default backbone's (gru in ARCH_DEFAULTS), so that TrainConfig(seed=1)
    # passed to training.train() trains what `charclf train --seed 1` does.
    epochs: int = 30
    batch_size: int = 128
    lr: float = 6e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-2
    seed: int = 0  # feeds the split, the initial weights and the batch order
    class_weighting: str = "none"  # "sqrt", "inverse": rare languages weigh more in the loss
    label_smoothing: float = 0.05
    clip_grad_norm: float = 1.0  # RNN gradients can spike on long names
    bucket: bool = True  # batches of names of similar length: fewer RNN steps per batch, faster epochs
    # The n-gram part (model.ngram_buckets > 0): L2 strength 1/C of its logistic regression, its
    # L-BFGS iterations, and how many training names an n-gram needs to get a weight.
    ngram_c: float = 30.0
    ngram_iterations: int = 150
    ngram_min_df: int = 2

    def __post_init__(self):
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check_choice("class_weighting", self.class_weighting, CLASS_WEIGHTINGS)
        if not (self.ngram_c > 0 and math.isfinite(self.ngram_c)):
            raise ValueError(f"ngram_c must be a positive number, got {self.ngram_c}")
        _check_positive("ngram_iterations", self.ngram_iterations)
        _check_positive("ngram_min_df", self.ngram_min_df)


def defaults_for(arch: str, **overrides) -> tuple[dict, "TrainConfig"]:
    """(model options, TrainConfig) for `arch`: its tuned defaults, then `overrides` (None = unset)."""
    _check_choice("arch", arch, ARCHS)
    chosen = {**ARCH_DEFAULTS[arch], **{k: v for k, v in overrides.items() if v is not None}}
    model_fields = {f.name for f in fields(ModelConfig)} - {"arch", "n_letters", "n_classes"}
    train_fields = {f.name for f in fields(TrainConfig)}
    unknown = set(chosen) - model_fields - train_fields
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    model_options = {k: v for k, v in chosen.items() if k in model_fields}
    return model_options, TrainConfig(**{k: v for k, v in chosen.items() if k in train_fields})


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
