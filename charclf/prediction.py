"""One name's answer and how a batch of names becomes answers, given any model's top-k
probabilities. No torch here: the torch and the ONNX Runtime classifiers share it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterable

from charclf.text import DEFAULT_ALPHABET, read_name

UNKNOWN = "unknown"
UNREADABLE = "no letters to read, even after transliteration to Latin"


@dataclass(slots=True)
class Prediction:
    """One name's answer: its top labels with (calibrated) probabilities, or `unknown` and why."""

    name: str
    as_read: str  # the name transliterated and folded to the model's alphabet: what the model saw
    top: list[tuple[str, float]] = field(default_factory=list)  # best first; empty when unreadable
    abstained: bool = False  # True: the answer is `unknown` (see reason; top[0] is the best guess)
    reason: str | None = None  # why it abstained
    caveats: list[str] = field(default_factory=list)  # where the Latin reading of the name may mislead

    @property
    def label(self) -> str:
        return UNKNOWN if self.abstained else self.top[0][0]

    @property
    def best_guess(self) -> tuple[str, float] | None:
        return self.top[0] if self.top else None

    @property
    def full_reason(self) -> str:
        """Why it abstained, then the caveats, in one string ("" when there is neither)."""
        return "; ".join(([self.reason] if self.reason else []) + self.caveats)

    def to_dict(self) -> dict:
        out = {"name": self.name, "as_read": self.as_read, "label": self.label, "abstained": self.abstained}
        if self.full_reason:
            out["reason"] = self.full_reason
        if self.abstained and self.top:
            out["best_guess"] = {"label": self.top[0][0], "probability": round(self.top[0][1], 6)}
        out["predictions"] = [{"label": label, "probability": round(p, 6)} for label, p in self.top]
        return out

    def to_json(self) -> str:
        """json.dumps(self.to_dict()), character for character, written out directly (several times
        faster, which matters when predicting a file of millions of names)."""
        parts = [f'"name": {_json_str(self.name)}', f'"as_read": {_json_str(self.as_read)}',
                 f'"label": {_json_str(self.label)}', f'"abstained": {"true" if self.abstained else "false"}']
        if self.full_reason:
            parts.append(f'"reason": {_json_str(self.full_reason)}')
        if self.abstained and self.top:
            parts.append(f'"best_guess": {_json_label(*self.top[0])}')
        parts.append(f'"predictions": [{", ".join([_json_label(label, p) for label, p in self.top])}]')
        return "{" + ", ".join(parts) + "}"


def _json_label(label: str, probability: float) -> str:
    return f'{{"label": {_json_str(label)}, "probability": {round(probability, 6)!r}}}'


_json_str = json.JSONEncoder().encode  # str -> its JSON literal, ASCII-escaped as json.dumps does


# folded names, k -> (N * k label indices, N * k probabilities), each name's k best first
TopK = Callable[[list, int], "tuple[list[int], list[float]]"]


def predict_names(names: Iterable[str], alphabet: str, labels: list[str], top_k: TopK, k: int = 3,
                  min_confidence: float | None = None) -> list[Prediction]:
    """Top-k labels with calibrated probabilities for each name, in input order, in batches.

    Names in any script are transliterated to Latin first (`as_read`). A name with no
    letters left, or (with `min_confidence`) whose top probability is below it, is
    answered `unknown` with the reason (and, for the latter, its best guess).
    """
    k = max(1, min(k, len(labels)))
    plain = alphabet == DEFAULT_ALPHABET
    predictions, readable = [], []
    for name in names:
        if plain and name.isascii() and name.isalpha():  # most names (Smith): read as they are
            p = Prediction(name, name)
            readable.append(p)
        else:
            as_read, caveats = read_name(name, alphabet)
            p = Prediction(name, as_read, caveats=caveats)
            # Punctuation alone ("...", "'") is no name: at least one letter is needed.
            if any(map(str.isalpha, as_read)):
                readable.append(p)
            else:
                p.abstained, p.reason = True, UNREADABLE
        predictions.append(p)
    if readable:
        indices, probabilities = top_k([p.as_read for p in readable], k)
        # (label, probability) pairs of all names at once, then k per name: fewer steps per name.
        pairs = list(zip(map(labels.__getitem__, indices), probabilities))
        for p, start in zip(readable, range(0, len(pairs), k)):
            p.top = pairs[start : start + k]
            if min_confidence is not None and p.top[0][1] < min_confidence:
                p.abstained = True
                p.reason = f"top probability {p.top[0][1]:.3f} is below the minimum confidence {min_confidence:g}"
    return predictions
