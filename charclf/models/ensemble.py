"""An ensemble of recurrent networks: `members` NameClassifiers of the same shape, each initialised
and trained on its own (the same batches, each its own loss), whose probabilities are averaged.

Averaging removes part of what one network owes to its random start and batch order: on the
names dataset two members scored about half a point of accuracy more than one, three about 0.7
(docs/tuning.md), at two and three times the training and prediction time. Every member is an
ordinary NameClassifier: the ensemble is as recurrent as each of them."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from charclf.config import ModelConfig
from charclf.models.model import NameClassifier


def average_probabilities(member_logits: list[torch.Tensor]) -> torch.Tensor:
    """K (B, C) logits -> (B, C) log of the members' mean probabilities (the ensemble's logits: their
    softmax is that mean)."""
    log_probs = torch.stack([torch.log_softmax(logits, dim=1) for logits in member_logits])  # (K, B, C)
    return torch.logsumexp(log_probs, dim=0) - math.log(len(member_logits))


class Ensemble(nn.Module):
    """config.members NameClassifiers; reads and answers as one NameClassifier does."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        one = dataclasses.replace(config, members=1)
        self.members = nn.ModuleList(NameClassifier(one) for _ in range(config.members))

    def index(self, names, alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.members[0].index(names, alphabet)  # the members read letters alike

    def letters(self, alphabet: str):
        """How the members turn folded names into letter positions (numpy), for prediction."""
        return self.members[0].letters(alphabet)

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) letter positions and (B,) lengths -> (B, n_classes) logits of the averaged probabilities."""
        return average_probabilities([member(letters, lengths) for member in self.members])
