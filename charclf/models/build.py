"""The module a model config describes: one network, an ensemble of them, or the n-gram baseline."""

from __future__ import annotations

from torch import nn

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
