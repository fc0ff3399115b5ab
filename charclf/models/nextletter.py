"""Next-letter prediction, a training aid: while it learns the labels, the network also learns
to predict each name's next letter from its forward states (and the previous letter from its
backward states), as a character language model does. This second task makes the per-letter
states describe spelling better from fewer names; it added about half a point of test accuracy
on the names dataset (docs/tuning.md).

The two small prediction layers exist only during training: the saved model is the plain
NameClassifier, and prediction never runs them. A classifier with spelling heads
(charclf.models.spelling) learns this task with those instead, each name's letters under its own label:
they are per-label versions of these layers, and they stay in the saved model."""

from __future__ import annotations

import torch
from torch import nn

from charclf.models.model import NameClassifier
from charclf.models.spelling import neighbours


class NextLetterTask(nn.Module):
    """The classifier plus its letter-prediction layers: forward() gives (logits, letter loss), so
    that one module, which DDP can wrap, holds every weight that trains."""

    def __init__(self, classifier: NameClassifier):
        super().__init__()
        config = classifier.config
        self.classifier = classifier
        self.forward_head = self.backward_head = None
        if classifier.spelling is None:  # else the spelling heads learn this task
            # Each predicts one of the letters or the name's end (the last class).
            self.forward_head = nn.Linear(config.hidden_size, config.n_letters + 1)
            self.backward_head = nn.Linear(config.hidden_size, config.n_letters + 1) if config.bidirectional else None

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) letter positions, (B,) lengths and (B,) labels (needed with spelling heads) ->
        ((B, n_classes) logits the label loss trains: the head's, or with spelling heads the model's
        whole answer; the mean cross-entropy of predicting each next (and previous) letter)."""
        outputs = self.classifier.read(letters, lengths)  # (B, T, directions * H)
        logits = self.classifier.classify(outputs, lengths)
        if self.classifier.spelling is not None:  # the answer includes them; so does the label loss
            spelling = self.classifier.spelling
            scores = spelling.letter_scores(outputs, letters, lengths, normalise=True)
            return self.classifier.answer(logits, spelling.spelt(scores)), spelling.loss(scores, labels)
        following, preceding, inside = neighbours(letters, lengths, self.classifier.config.n_letters)
        hidden = self.classifier.config.hidden_size
        loss = nn.functional.cross_entropy(self.forward_head(outputs[..., :hidden][inside]), following[inside])
        if self.backward_head is not None:
            backward = nn.functional.cross_entropy(self.backward_head(outputs[..., hidden:][inside]), preceding[inside])
            loss = (loss + backward) / 2
        return logits, loss
