"""What one training step runs: the model's networks, each with its next-letter layers when it
trains with them (charclf.models.nextletter), and the loss they are stepped on.

Called as a model is, nanoGPT's way: forward(letters, lengths, targets, label_loss) -> (loss,
label loss), whatever the model: one network, or an ensemble whose members each train on their own
loss (the same batches; charclf.models.ensemble). One module holds every weight that trains, so
that DDP can wrap it; the saved model is the plain model, without the training-only layers."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from charclf.models.nextletter import NextLetterTask

LabelLoss = Callable[[torch.Tensor], torch.Tensor]  # (B, n_classes) logits -> the label loss


class TrainingTasks(nn.Module):
    """`model`'s networks (an ensemble's members, else the model itself), each with next-letter layers
    when `next_letter_weight` > 0."""

    def __init__(self, model: nn.Module, next_letter_weight: float = 0.0):
        super().__init__()
        self.next_letter_weight = next_letter_weight
        networks = model.members if hasattr(model, "members") else [model]
        self.tasks = nn.ModuleList(NextLetterTask(m) if next_letter_weight else m for m in networks)
        # Training states saved before the tasks were one module held a lone network's weights
        # without the "tasks.0." prefix.
        self._register_load_state_dict_pre_hook(_prefixed)

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                label_loss: LabelLoss) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) letter positions, (B,) lengths, (B,) targets and the label loss of (B, C) logits ->
        (the loss to step on: every network's label loss, plus next_letter_weight times its letter
        loss; the label loss reported: the networks' mean)."""
        label_losses, letter_losses = [], []
        for task in self.tasks:
            if self.next_letter_weight:
                logits, letter_loss = task(letters, lengths, targets)
                letter_losses.append(letter_loss)
            else:
                logits = task(letters, lengths)
            label_losses.append(label_loss(logits))
        loss = sum(label_losses) + self.next_letter_weight * sum(letter_losses)
        return loss, sum(label_losses) / len(label_losses)


def _prefixed(state_dict: dict, prefix: str, *args) -> None:
    """load_state_dict pre-hook: a lone network's weights as saved before (no "tasks." keys) -> "tasks.0."."""
    keys = [key for key in state_dict if key.startswith(prefix)]
    if keys and not any(key.startswith(prefix + "tasks.") for key in keys):
        for key in keys:
            state_dict[f"{prefix}tasks.0.{key[len(prefix):]}"] = state_dict.pop(key)
