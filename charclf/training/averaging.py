"""Weight averaging, a training aid: an exponential moving average of the model's weights over
the optimizer's steps. The averaged weights are what is validated and kept: they sit in a wider,
flatter region of the loss than the last step's and usually score better on held-out names
(docs/tuning.md). The saved model is an ordinary NameClassifier with those weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """average <- decay_t * average + (1 - decay_t) * weights, after every optimizer step.

    decay_t = min(decay, (1 + t) / (10 + t)) for the t-th update: early on, when the average
    would still be mostly the random initial weights, it follows the model closely."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach(), 1 - decay)
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.model.load_state_dict(state["weights"])
