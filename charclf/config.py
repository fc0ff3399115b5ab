"""The two configs, model shape and training, as plain dataclasses (no torch, so the CLI's help
can show their defaults without importing it). Field names follow torch's own arguments.

One source of defaults: `ModelConfig()` and `TrainConfig()` hold the default model's (the
bidirectional GRU) settings, what `charclf train` uses with no options. The other backbones
change a few of them (ARCH_DEFAULTS), and the n-gram baseline uses its own fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

ARCHS = ("gru", "lstm", "rnn")  # the recurrent backbones: the keys of charclf.models.model.BACKBONES
NGRAM = "ngram"  # the classical baseline: a logistic regression over character n-grams (charclf.models.ngrams)
MODELS = ARCHS + (NGRAM,)  # what `charclf train --model` accepts
POOLINGS = ("last", "max", "mean+max", "last+max")  # how per-letter outputs become one vector per name
# Loss weight of a label = (names / names of that label) ** power, scaled to mean 1.
CLASS_WEIGHTINGS = {"none": 0.0, "fourth-root": 0.25, "sqrt": 0.5, "inverse": 1.0}

# The largest model settings charclf builds or loads (a checkpoint asking for more is refused).
MODEL_LIMITS = {"n_letters": 10_000, "n_classes": 10_000, "hidden_size": 4096, "num_layers": 16,
                "embedding_dim": 1024, "members": 16, "spelling_rank": 4096, "ngram_buckets": 1 << 24,
                "ngram_max_n": 16}
MAX_SEED = 2**32 - 1
MAX_EXTRA_WEIGHT = 16  # an extra name read at most this many times per epoch
MAX_EXTRA_CAP = 10_000_000  # extra names per label (0: all of them)
MAX_EXTRA_RATIO = 1000.0  # extra names per label, as a multiple of its training names
MAX_BINS = 1000  # confidence bins of an ECE (charclf.predict.calibration): each one a pass over the names
# Which runtime answers (charclf.predict.loading): auto takes a model's current .onnx export through
# ONNX Runtime where nothing asks for torch; onnx and torch force one.
BACKENDS = ("auto", "onnx", "torch")
# Whole trainings by name (charclf.training.recipes): one default run, the shipped model's recipe,
# or the PyTorch tutorial's network trained the tutorial's way.
PRESETS = ("default", "best", "tutorial")
# How the weights are stepped: AdamW on a one-cycle schedule (charclf's), or plain SGD at a constant rate.
OPTIMIZERS = ("adamw", "sgd")
# What an epoch draws: every training name once, shuffled; or, the tutorial's way, as many draws of a
# label uniformly at random and then one of its names (rare labels' names seen more often).
SAMPLINGS = ("shuffle", "by-label")

# What each backbone changes in the defaults below, tuned on the validation split (docs/tuning.md).
# Options given explicitly win.
ARCH_DEFAULTS: dict[str, dict] = {
    "gru": {},
    "lstm": {"lr": 4e-3},
    # A plain tanh RNN has a third of a GRU's weights per hidden unit: twice the units cost about
    # what the GRU does, and its gradients spike more over long names: tighter clipping.
    "rnn": {"hidden_size": 256, "clip_grad_norm": 0.5},
    NGRAM: {},
}


@dataclass
class ModelConfig:
    arch: str
    n_letters: int
    n_classes: int
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.25
    pooling: str = "mean+max"
    embedding_dim: int = 48  # letters -> nn.Embedding of this width (0: one-hot letters straight into the RNN)
    lowercase: bool = True  # read every letter lower-cased (A and a share an embedding); see charclf.models.model
    # Networks of this shape trained side by side, their probabilities averaged (charclf.models.ensemble):
    # more accurate, and as many times slower to train and to predict.
    members: int = 1
    # Per-label spelling heads (charclf.models.spelling): log p(name | label) from the network's own states,
    # times this weight, is added to the head's log-probabilities (0: no spelling heads). They
    # read each letter's states through a projection to spelling_rank numbers.
    spelling_weight: float = 0.3
    spelling_rank: int = 32
    # True: the answer's log p(name | label) is the exact softmax over each label's letters (models
    # saved before self-normalised heads); False: training keeps those sums near 1, and the answer
    # reads only the actual letters' logits, about a third faster (charclf.models.spelling).
    spelling_normalised: bool = False
    # Only for arch "ngram": hash buckets and the longest n-gram of the baseline.
    ngram_buckets: int = 1 << 18
    ngram_max_n: int = 5

    def __post_init__(self):
        _check_types(self)
        _check_choice("arch", self.arch, MODELS)
        _check_choice("pooling", self.pooling, POOLINGS)
        if self.embedding_dim < 0:
            raise ValueError(f"embedding_dim must be at least 0, got {self.embedding_dim}")
        if not (0 <= self.spelling_weight and math.isfinite(self.spelling_weight)):
            raise ValueError(f"spelling_weight must be a number >= 0, got {self.spelling_weight}")
        for name in ("n_letters", "n_classes", "hidden_size", "num_layers", "members", "spelling_rank",
                     "ngram_buckets", "ngram_max_n"):
            _check_positive(name, getattr(self, name))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.arch == NGRAM and self.members != 1:
            raise ValueError("the n-gram baseline is one model: members must be 1")
        for name, most in MODEL_LIMITS.items():
            if getattr(self, name) > most:
                raise ValueError(f"{name} must be at most {most}, got {getattr(self, name)}")


# Settings that older saved models lack, with the value they were trained with (not today's default).
SAVED_BEFORE = {"members": 1, "spelling_weight": 0.0, "spelling_normalised": True}


def saved_model_config(saved: dict) -> ModelConfig:
    """A ModelConfig from a saved table: a setting it lacks is read as what models were before it."""
    return ModelConfig(**{**SAVED_BEFORE, **saved})


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 5e-3  # peak learning rate of the one-cycle schedule (sgd: the constant rate)
    weight_decay: float = 1e-2
    optimizer: str = "adamw"  # OPTIMIZERS
    sampling: str = "shuffle"  # SAMPLINGS
    seed: int = 0  # feeds the split, the initial weights and the batch order
    class_weighting: str = "none"  # "fourth-root", "sqrt", "inverse": rare languages weigh more in the loss
    label_smoothing: float = 0.1
    clip_grad_norm: float = 1.0  # RNN gradients can spike on long names (0: no clipping)
    bucket: bool = True  # batches of names of similar length: fewer RNN steps per batch, faster epochs
    # Weight averaging (averaging.py): the model kept is an exponential moving average of the
    # weights over the steps, with this decay per step (0: the weights as trained).
    average_decay: float = 0.998
    # Next-letter prediction (nextletter.py), a second task while training: its loss is added to
    # the labels' with this weight (0: none). The saved model does not include it.
    next_letter_weight: float = 0.6
    # Refitting (charclf.training.refit): a second process trains the same network on train + validation at the
    # same time, and its weights at the epoch chosen on validation are the ones saved.
    refit: bool = True
    # Distillation (charclf.training.distill), with a teacher model given to train(): this share of
    # the label loss is the KL divergence from the teacher's probabilities (0: the labels alone),
    # and each batch also reads crossover x its size of crossovers, which only the teacher labels.
    distill_weight: float = 0.0
    crossover: float = 0.0
    # The n-gram baseline (--model ngram): L2 strength 1/C of its logistic regression, its L-BFGS
    # iterations, and how many training names an n-gram needs to get a weight.
    ngram_c: float = 30.0
    ngram_iterations: int = 150
    ngram_min_df: int = 2
    # Extra training names (charclf.data.extra): "mimesis" (its public surname lists) or a folder of
    # <Label>.txt files ("": none); each epoch reads extra_weight x their pool, at most extra_cap names
    # per label (0: no cap) and at most extra_ratio x the label's training names (0: no limit).
    extra_names: str = ""
    extra_weight: float = 0.3
    extra_cap: int = 500
    extra_ratio: float = 0.0

    def __post_init__(self):
        _check_types(self)
        _check_positive("epochs", self.epochs)
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be from 0 to {MAX_SEED}, got {self.seed}")
        _check_positive("batch_size", self.batch_size)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (0 <= self.next_letter_weight and math.isfinite(self.next_letter_weight)):
            raise ValueError(f"next_letter_weight must be a number >= 0, got {self.next_letter_weight}")
        if not 0 <= self.distill_weight <= 1:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if not 0 <= self.crossover <= 16:
            raise ValueError(f"crossover must be from 0 to 16, got {self.crossover}")
        if not 0 <= self.average_decay < 1:
            raise ValueError(f"average_decay must be in [0, 1), got {self.average_decay}")
        _check_choice("class_weighting", self.class_weighting, tuple(CLASS_WEIGHTINGS))
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("sampling", self.sampling, SAMPLINGS)
        if not (0 <= self.clip_grad_norm and math.isfinite(self.clip_grad_norm)):
            raise ValueError(f"clip_grad_norm must be a number >= 0, got {self.clip_grad_norm}")
        if not (self.ngram_c > 0 and math.isfinite(self.ngram_c)):
            raise ValueError(f"ngram_c must be a positive number, got {self.ngram_c}")
        _check_positive("ngram_iterations", self.ngram_iterations)
        _check_positive("ngram_min_df", self.ngram_min_df)
        if not 0 <= self.extra_weight <= MAX_EXTRA_WEIGHT:
            raise ValueError(f"extra_weight must be from 0 to {MAX_EXTRA_WEIGHT}, got {self.extra_weight}")
        if self.extra_cap < 0 or self.extra_ratio < 0:
            raise ValueError(f"extra_cap and extra_ratio must be >= 0, got {self.extra_cap} and {self.extra_ratio}")


def defaults_for(arch: str, **overrides) -> tuple[dict, "TrainConfig"]:
    """(model options, TrainConfig) for `arch`: the dataclass defaults, its changes in
    ARCH_DEFAULTS, then `overrides` (None = unset)."""
    _check_choice("model", arch, MODELS)
    model_fields = [f.name for f in fields(ModelConfig) if f.name not in ("arch", "n_letters", "n_classes")]
    train_fields = [f.name for f in fields(TrainConfig)]
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(model_fields) - set(train_fields)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    chosen = {name: given.get(name, default_of(arch, name)) for name in model_fields + train_fields}
    return ({name: chosen[name] for name in model_fields},
            TrainConfig(**{name: chosen[name] for name in train_fields}))


def default_of(arch: str, name: str):
    """The value `arch` trains with for one option when none is given."""
    if name in ARCH_DEFAULTS[arch]:
        return ARCH_DEFAULTS[arch][name]
    source = ModelConfig if name in {f.name for f in fields(ModelConfig)} else TrainConfig
    return next(f.default for f in fields(source) if f.name == name)


def _check_types(config) -> None:
    """Every field of the type its annotation names (a checkpoint or a saved run may hold anything)."""
    for f in fields(config):
        value = getattr(config, f.name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "int": number and isinstance(value, int), "float": number and math.isfinite(value)}[f.type]
        if not ok:
            raise ValueError(f"{f.name} must be {'an' if f.type == 'int' else 'a'} {f.type}, got {str(value)[:40]}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
