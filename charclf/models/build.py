"""The module a model config describes: one network, an ensemble of them, or the n-gram baseline;
and its weights' shapes."""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from charclf.config import NGRAM, ModelConfig
from charclf.models.ensemble import Ensemble
from charclf.models.model import NameClassifier
from charclf.models.ngrams import NgramClassifier


def build_model(config: ModelConfig) -> nn.Module:
    """A NameClassifier, an Ensemble of them (config.members > 1), or for arch "ngram" the n-gram
    baseline."""
    if config.arch == NGRAM:
        return NgramClassifier(config)
    if config.members > 1:
        return Ensemble(config)
    return NameClassifier(config)


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of the model `config` describes, from that model built on torch's meta
    device (shapes only: nothing is allocated or initialised). A checkpoint's shapes are checked
    against these before its weights are read. For the n-gram baseline, its tables at their
    largest (a checkpoint keeps only the rows seen in training)."""
    with torch.device("meta"), _NoInitialisation():
        model = build_model(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict(keep_vars=True).items()}


class _NoInitialisation(TorchFunctionMode):
    """torch.nn.init's functions leave their tensor as it is: shapes need no values, and on the meta
    device some of them (normal_, which nn.Embedding calls) first import most of torch's compiler,
    a second of start-up."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))
