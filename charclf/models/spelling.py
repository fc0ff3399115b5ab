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

Self-normalised: a softmax per label over every letter was most of the heads' cost at prediction
time (an exp of n_classes x (letters + 1) logits per letter). Training therefore also pushes each
label's log-normaliser towards 0 (NORMALISER_PENALTY), and the answer reads log p(letter | label)
as the one logit of the actual letter: prediction computes the logits and picks, no softmax.
Models saved before this (config.spelling_normalised) keep the exact softmax.

Cost: each letter's states go through a projection to config.spelling_rank numbers, then through
n_classes x (letters + 1) outputs: with the default GRU about a third more arithmetic per letter
(docs/accuracy-and-speed.md, "Accuracy")"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from charclf.names.text import DEFAULT_ALPHABET


def neighbours(letters: torch.Tensor, lengths: torch.Tensor,
               end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
        return torch.arange(n_letters + 1, device="cpu")  # on the CPU even while a model is built on "meta"
    seen = sorted({DEFAULT_ALPHABET.index(ch) for ch in DEFAULT_ALPHABET.lower()})
    codes = torch.full((n_letters + 1,), len(seen), dtype=torch.long, device="cpu")  # the end, and letters never read
    codes[seen] = torch.arange(len(seen), device="cpu")
    return codes


def combined(logits: torch.Tensor, spelt: torch.Tensor, weight: float) -> torch.Tensor:
    """The one home of the formula: a head's (B, C) logits and (B, C) log p(name | label) -> the
    model's answer, log-softmax(logits) + weight * log p(name | label) (logits, not normalised)."""
    return torch.log_softmax(logits, dim=1) + weight * spelt


# Weight of the mean squared log-normaliser in the training loss: it keeps each label's letter
# logits summing to probability about 1 (self-normalised), so that prediction can read log p(letter |
# label) off the one logit of the actual letter, without the softmax over all of them (the
# normalisers were most of the heads' cost). 0.1, 0.3 and 1.0 were tried: 0.1 lost nothing on
# validation, 0.3 neither, 1.0 a little (docs/tuning.md).
NORMALISER_PENALTY = 0.1


@dataclass
class LetterScores:
    """Per-letter scores of B names under each of C labels, averaged over the directions; all (B, T, C)
    but `inside`, 0 after each name's end."""
    logits: torch.Tensor  # the logit of each position's actual next (and previous) letter
    log_norms: torch.Tensor | None  # log of the sum of exp(all letter logits): log p = logits - log_norms
    squared_log_norms: torch.Tensor | None  # what the self-normalising penalty averages
    inside: torch.Tensor  # (B, T): real letters

    def log_probs(self) -> torch.Tensor:
        return self.logits - self.log_norms


class SpellingDirection(nn.Module):
    """One direction's per-label letter model: states (.., H) -> per-label letter logits."""

    def __init__(self, hidden: int, rank: int, n_classes: int, outputs: int):
        super().__init__()
        self.n_classes, self.outputs = n_classes, outputs
        self.project = nn.Linear(hidden, rank)
        self.letters = nn.Linear(rank, n_classes * outputs)  # label c's rows: c * outputs ... + outputs

    def scores(self, states: torch.Tensor, targets: torch.Tensor,
               normalise: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) states and the (B, T) output index each position predicts -> ((B, T, C) logit of
        the target under every label; with `normalise`, (B, T, C) each label's log-normaliser, else None)."""
        logits = self.letters(self.project(states))  # (B, T, C * O)
        rows = targets[:, :, None] + self.outputs * torch.arange(self.n_classes, device=targets.device)  # (B, T, C)
        # float: under bfloat16 autocast (charclf.predict.precision) the products are bfloat16, the sums over
        # letters not.
        picked = logits.gather(2, rows).float()
        if not normalise:
            return picked, None
        return picked, logits.float().unflatten(2, (self.n_classes, self.outputs)).logsumexp(3)


class SpellingHeads(nn.Module):
    """Both directions' per-label letter models (one when the network reads one way). With
    `normalised`, the answer's log p(name | label) subtracts the normalisers (the exact softmax: how
    models were saved before self-normalised heads); else it is the sum of the actual letters' logits."""

    def __init__(self, hidden: int, rank: int, n_classes: int, n_letters: int, lowercase: bool, bidirectional: bool,
                 normalised: bool = False):
        super().__init__()
        self.hidden, self.normalised = hidden, normalised
        self.register_buffer("codes", letter_codes(n_letters, lowercase), persistent=False)
        self.end = n_letters
        outputs = int(self.codes.max()) + 1
        self.forward_letters = SpellingDirection(hidden, rank, n_classes, outputs)
        self.backward_letters = SpellingDirection(hidden, rank, n_classes, outputs) if bidirectional else None

    def letter_scores(self, outputs: torch.Tensor, letters: torch.Tensor, lengths: torch.Tensor,
                      normalise: bool) -> LetterScores:
        """(B, T, directions * H) per-letter outputs, (B, T) letters, (B,) lengths -> their LetterScores
        (the normalisers only with `normalise`). Padding positions are computed and masked out."""
        following, preceding, inside = neighbours(letters, lengths, self.end)
        parts = [self.forward_letters.scores(outputs[..., :self.hidden], self.codes[following], normalise)]
        if self.backward_letters is not None:
            parts.append(self.backward_letters.scores(outputs[..., self.hidden:2 * self.hidden],
                                                      self.codes[preceding], normalise))
        mask = inside[:, :, None].to(parts[0][0].dtype)

        def mean(tensors: list[torch.Tensor]) -> torch.Tensor:
            return sum(tensors) / len(tensors) * mask

        if not normalise:
            return LetterScores(mean([logits for logits, _ in parts]), None, None, inside)
        return LetterScores(mean([logits for logits, _ in parts]), mean([norms for _, norms in parts]),
                            mean([norms ** 2 for _, norms in parts]), inside)

    def log_likelihood(self, outputs: torch.Tensor, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """-> (B, n_classes) log p(name | label), averaged over the directions: what the answer adds."""
        scores = self.letter_scores(outputs, letters, lengths, normalise=self.normalised)
        return self.spelt(scores)

    def spelt(self, scores: LetterScores) -> torch.Tensor:
        """LetterScores -> (B, n_classes) log p(name | label) as the answer reads it."""
        return (scores.log_probs() if self.normalised else scores.logits).sum(1)

    def loss(self, scores: LetterScores, labels: torch.Tensor) -> torch.Tensor:
        """LetterScores with normalisers and the (B,) labels -> the mean cross-entropy of each next
        (and previous) letter under each name's own label, plus (self-normalised heads) the penalty
        on every label's squared log-normaliser."""
        per_letter = scores.log_probs()
        own = per_letter.gather(2, labels[:, None, None].expand(-1, per_letter.shape[1], 1)).squeeze(2)  # (B, T)
        letters = scores.inside.sum()
        loss = -own.sum() / letters
        if self.normalised:
            return loss
        return loss + NORMALISER_PENALTY * scores.squared_log_norms.sum() / (letters * per_letter.shape[2])
