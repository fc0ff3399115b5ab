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
from torch.nn.utils.rnn import PackedSequence

from charclf.config import ModelConfig
from charclf.models.model import NameClassifier
from charclf.models.nextletter import NextLetterTask


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

    def pack(self, padded: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        return self.members[0].pack(padded, lengths)

    def forward(self, names: PackedSequence) -> torch.Tensor:
        """Packed names -> (B, n_classes) logits of the averaged probabilities."""
        return average_probabilities([member(names) for member in self.members])

    def same_length(self, letters: torch.Tensor) -> torch.Tensor:
        """(B, L) letter positions of names that all have L letters -> (B, n_classes) logits."""
        return average_probabilities([member.same_length(letters) for member in self.members])


class MemberTasks(nn.Module):
    """What trains in an ensemble: each member on its own, with its own next-letter layers when
    `letters` (charclf.models.nextletter). forward() gives each member's logits and letter loss; one
    module, which DDP can wrap, holds every weight that trains."""

    def __init__(self, ensemble: Ensemble, letters: bool):
        super().__init__()
        self.letters = letters
        self.tasks = nn.ModuleList(NextLetterTask(m) if letters else m for m in ensemble.members)

    def forward(self, names: PackedSequence, letters: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
        """-> (K (B, n_classes) logits the label loss trains, K letter losses (none without next-letter layers))."""
        if not self.letters:
            return [task(names) for task in self.tasks], []
        outputs = [task(names, letters, lengths, labels) for task in self.tasks]
        return [logits for logits, _ in outputs], [loss for _, loss in outputs]
