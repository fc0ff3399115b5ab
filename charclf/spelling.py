"""Each language's spelling, read off the network's own states: a character language model per label.

From each letter's forward state the heads predict the next letter (or the name's end), and from
its backward state the previous one (or the start), with one set of output weights per label:
p(letter | states, label). Summed over a name's letters that is log p(name | label), how well the
name is spelt for each language. The classifier adds it, times config.spelling_weight, to its
head's log-probabilities: the head says which label the name's states point to, the spelling
model how likely each language is to spell exactly these letters.

While training they learn twice over (nextletter.py): as the next-letter task, each name's letters
under its own label, and through the label loss on the model's answer, which includes them. The
heads are part of the saved model: they are the network's last layers, reading the same
recurrent states.

Cost: each letter's states go through a projection to config.spelling_rank numbers, then through
n_classes x (letters + 1) outputs, normalised per label: with the default GRU about a third more
arithmetic per letter, and prediction about that much slower (README, "Accuracy")."""

from __future__ import annotations

import torch
from torch import nn

from charclf.text import DEFAULT_ALPHABET


def neighbours(letters: torch.Tensor, lengths: torch.Tensor, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T) letter positions and (B,) lengths -> the letter after each position (`end` after the
    last), the letter before it (`end` before the first), both (B, T), and the (B, T) mask of
    real letters."""
    B, T = letters.shape
    lengths = lengths.to(letters.device)
    inside = torch.arange(T, device=letters.device)[None, :] < lengths[:, None]
    following = torch.full_like(letters, end)
    following[:, :-1] = letters[:, 1:]
    following[torch.arange(B, device=letters.device), lengths - 1] = end
    preceding = torch.full_like(letters, end)
    preceding[:, 1:] = letters[:, :-1]
    return following, preceding, inside


def letter_codes(n_letters: int, lowercase: bool) -> torch.Tensor:
    """(n_letters + 1,) alphabet position (the last: a name's end) -> the spelling heads' output
    index. A lower-casing model never sees an upper-case letter, so those outputs are dropped:
    with the default alphabet 32 outputs instead of 58."""
    if not lowercase or n_letters != len(DEFAULT_ALPHABET):
        return torch.arange(n_letters + 1)
    seen = sorted({DEFAULT_ALPHABET.index(ch) for ch in DEFAULT_ALPHABET.lower()})
    codes = torch.full((n_letters + 1,), len(seen), dtype=torch.long)  # the end, and letters never read
    codes[seen] = torch.arange(len(seen))
    return codes


def combined(logits: torch.Tensor, spelt: torch.Tensor, weight: float) -> torch.Tensor:
    """The one home of the formula: a head's (B, C) logits and (B, C) log p(name | label) -> the
    model's answer, log-softmax(logits) + weight * log p(name | label) (logits, not normalised)."""
    return torch.log_softmax(logits, dim=1) + weight * spelt


class SpellingDirection(nn.Module):
    """One direction's per-label letter model: states (.., H) -> per-label letter log-probabilities."""

    def __init__(self, hidden: int, rank: int, n_classes: int, outputs: int):
        super().__init__()
        self.n_classes, self.outputs = n_classes, outputs
        self.project = nn.Linear(hidden, rank)
        self.letters = nn.Linear(rank, n_classes * outputs)  # label c's rows: c * outputs ... + outputs

    def log_probs(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, T, H) states and the (B, T) output index each position predicts -> (B, T, C)
        log p(target | states, label) for every label."""
        logits = self.letters(self.project(states)).unflatten(2, (self.n_classes, self.outputs))  # (B, T, C, O)
        picked = targets[:, :, None, None].expand(-1, -1, self.n_classes, 1)  # (B, T, C, 1)
        return logits.log_softmax(3).gather(3, picked).squeeze(3)


class SpellingHeads(nn.Module):
    """Both directions' per-label letter models (one when the network reads one way)."""

    def __init__(self, hidden: int, rank: int, n_classes: int, n_letters: int, lowercase: bool, bidirectional: bool):
        super().__init__()
        self.hidden = hidden
        self.register_buffer("codes", letter_codes(n_letters, lowercase), persistent=False)
        self.end = n_letters
        outputs = int(self.codes.max()) + 1
        self.forward_letters = SpellingDirection(hidden, rank, n_classes, outputs)
        self.backward_letters = SpellingDirection(hidden, rank, n_classes, outputs) if bidirectional else None

    def letter_log_probs(self, outputs: torch.Tensor, letters: torch.Tensor,
                         lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, directions * H) per-letter outputs, (B, T) letters, (B,) lengths -> ((B, T, C)
        log-probability of each position's next (and previous) letter under every label, averaged
        over the directions and 0 after the name's end; the (B, T) mask of real letters)."""
        following, preceding, inside = neighbours(letters, lengths, self.end)
        total = self.forward_letters.log_probs(outputs[..., :self.hidden], self.codes[following])
        if self.backward_letters is not None:
            backward = self.backward_letters.log_probs(outputs[..., self.hidden:2 * self.hidden], self.codes[preceding])
            total = (total + backward) / 2
        return total * inside[:, :, None].to(total.dtype), inside

    def log_likelihood(self, outputs: torch.Tensor, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """-> (B, n_classes) log p(name | label), averaged over the directions. Padding positions
        are computed and masked out (prediction batches names of one length: there is none)."""
        return self.letter_log_probs(outputs, letters, lengths)[0].sum(1)

    def loss(self, per_letter: torch.Tensor, inside: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What letter_log_probs returns, and the (B,) labels -> the mean cross-entropy of each
        next (and previous) letter under each name's own label."""
        own = per_letter.gather(2, labels[:, None, None].expand(-1, per_letter.shape[1], 1)).squeeze(2)  # (B, T)
        return -own.sum() / inside.sum()
