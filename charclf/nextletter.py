"""Next-letter prediction, a training aid: while it learns the labels, the network also learns
to predict each name's next letter from its forward states (and the previous letter from its
backward states), as a character language model does. This second task makes the per-letter
states describe spelling better from fewer names; it added about half a point of test accuracy
on the names dataset (docs/tuning.md).

The two small prediction layers exist only during training: the saved model is the plain
NameClassifier, and prediction never runs them."""

from __future__ import annotations

import torch
from torch import nn

from charclf.model import NameClassifier


class NextLetterTask(nn.Module):
    """The classifier plus its letter-prediction layers: forward() gives (logits, letter loss), so
    that one module, which DDP can wrap, holds every weight that trains."""

    def __init__(self, classifier: NameClassifier):
        super().__init__()
        config = classifier.config
        self.classifier = classifier
        # Each predicts one of the letters or the name's end (the last class).
        self.forward_head = nn.Linear(config.hidden_size, config.n_letters + 1)
        self.backward_head = nn.Linear(config.hidden_size, config.n_letters + 1) if config.bidirectional else None

    def forward(self, names, letters: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed names and their (B, T) letter positions and (B,) lengths -> ((B, n_classes) logits,
        the mean cross-entropy of predicting each next (and previous) letter)."""
        outputs, out_lengths, h = self.classifier.read(names)  # (B, T, directions * H)
        logits = self.classifier.classify(outputs, out_lengths, h)
        end = self.classifier.config.n_letters
        B, T = letters.shape
        inside = torch.arange(T, device=letters.device)[None, :] < lengths.to(letters.device)[:, None]  # (B, T)
        following = torch.full_like(letters, end)  # the letter after position t, or the end
        following[:, :-1] = letters[:, 1:]
        following[torch.arange(B, device=letters.device), lengths.to(letters.device) - 1] = end
        hidden = self.classifier.config.hidden_size
        loss = nn.functional.cross_entropy(self.forward_head(outputs[..., :hidden][inside]), following[inside])
        if self.backward_head is not None:
            preceding = torch.full_like(letters, end)  # the letter before position t, or the start
            preceding[:, 1:] = letters[:, :-1]
            backward = nn.functional.cross_entropy(self.backward_head(outputs[..., hidden:][inside]), preceding[inside])
            loss = (loss + backward) / 2
        return logits, loss
