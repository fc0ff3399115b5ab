"""One name's answer and how a batch of names becomes answers, given any model's top-k
probabilities. No torch here: the torch and the ONNX Runtime classifiers share it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterable

from charclf.names.fullnames import FamilyName
from charclf.names.reader import EMPTY, UNREADABLE, Reading, read  # noqa: F401 (EMPTY, UNREADABLE: imported from here too)
from charclf.names.scripts import LATIN
from charclf.names.text import MAX_READ_LETTERS

UNKNOWN = "unknown"
SHOWN = 40  # the letters shown of a reading too long to predict


@dataclass(slots=True)
class Prediction:
    """One name's answer: its top labels with (calibrated) probabilities, or `unknown` and why."""

    name: str
    as_read: str  # the name transliterated and folded to the model's alphabet: what the model saw
    top: list[tuple[str, float]] = field(default_factory=list)  # best first; empty when unreadable
    abstained: bool = False  # True: the answer is `unknown` (see reason; top[0] is the best guess)
    reason: str | None = None  # why it abstained
    caveats: list[str] = field(default_factory=list)  # where the Latin reading of the name may mislead
    label_set: list[str] | None = None  # with a coverage: the conformal set, likeliest first
    model: str | None = None  # the short id of the model file that answered
    family_name: FamilyName | None = None  # with full names: the part read, and why (charclf.names.fullnames)
    script: str = LATIN  # the writing system the name was typed in (charclf.names.scripts.SCRIPTS)
    reading: Reading | None = field(default=None, repr=False, compare=False)  # how it was read (names.reader)

    @property
    def label(self) -> str:
        return UNKNOWN if self.abstained else self.top[0][0]

    @property
    def read_from(self) -> str:
        """The text the model read: the name, or with full names its family name."""
        return self.family_name.part if self.family_name else self.name

    @property
    def best_guess(self) -> tuple[str, float] | None:
        return self.top[0] if self.top else None

    @property
    def full_reason(self) -> str:
        """Why it abstained, then the caveats, in one string ("" when there is neither)."""
        return "; ".join(([self.reason] if self.reason else []) + self.caveats)

    def to_dict(self) -> dict:
        out = {"name": self.name, "as_read": self.as_read, "script": self.script, "label": self.label,
               "abstained": self.abstained}
        if self.full_reason:
            out["reason"] = self.full_reason
        if self.abstained and self.top:
            out["best_guess"] = {"label": self.top[0][0], "probability": round(self.top[0][1], 6)}
        out["predictions"] = [{"label": label, "probability": round(p, 6)} for label, p in self.top]
        if self.family_name is not None:
            out["family_name"], out["family_name_rule"] = self.family_name.part, self.family_name.rule
        if self.label_set is not None:
            out["label_set"] = self.label_set
        if self.model is not None:
            out["model"] = self.model
        return out

    def to_json(self) -> str:
        """json.dumps(self.to_dict()), character for character, written out directly (several times
        faster, which matters when predicting a file of millions of names)."""
        parts = [f'"name": {_json_str(self.name)}', f'"as_read": {_json_str(self.as_read)}',
                 f'"script": {_json_str(self.script)}', f'"label": {_json_str(self.label)}',
                 f'"abstained": {"true" if self.abstained else "false"}']
        if self.full_reason:
            parts.append(f'"reason": {_json_str(self.full_reason)}')
        if self.abstained and self.top:
            parts.append(f'"best_guess": {_json_label(*self.top[0])}')
        parts.append(f'"predictions": [{", ".join([_json_label(label, p) for label, p in self.top])}]')
        if self.family_name is not None:
            parts.append(f'"family_name": {_json_str(self.family_name.part)}')
            parts.append(f'"family_name_rule": {_json_str(self.family_name.rule)}')
        if self.label_set is not None:
            parts.append(f'"label_set": [{", ".join(map(_json_str, self.label_set))}]')
        if self.model is not None:
            parts.append(f'"model": {_json_str(self.model)}')
        return "{" + ", ".join(parts) + "}"


def _json_label(label: str, probability: float) -> str:
    return f'{{"label": {_json_str(label)}, "probability": {round(probability, 6)!r}}}'


_json_str = json.JSONEncoder().encode  # str -> its JSON literal, ASCII-escaped as json.dumps does


# the readable names (their as_read is what the model reads), k -> (N * k label indices, N * k probabilities,
# each name's k best first; each name's label set as label indices, or None when no coverage was asked for)
TopK = Callable[[list["Prediction"], int], "tuple[list[int], list[float], list[list[int]] | None]"]


def predict_names(names: Iterable[str], alphabet: str, labels: list[str], top_k: TopK, k: int = 3,
                  min_confidence: float | None = None, full_names: bool = False,
                  model: str | None = None) -> list[Prediction]:
    """Top-k labels with calibrated probabilities for each name, in input order, in batches.

    Names in any script are transliterated to Latin first (`as_read`). A name with no
    letters left, or (with `min_confidence`) whose top probability is below it, is
    answered `unknown` with the reason (and, for the latter, its best guess). With
    `full_names`, the family name of each is found and read (charclf.names.fullnames).
    """
    k = max(1, min(k, len(labels)))
    predictions, readable = read_names(names, alphabet, full_names, model)
    if readable:
        indices, probabilities, sets = top_k(readable, k)
        # (label, probability) pairs of all names at once, then k per name: fewer steps per name.
        pairs = list(zip(map(labels.__getitem__, indices), probabilities))
        for i, (p, start) in enumerate(zip(readable, range(0, len(pairs), k))):
            p.top = pairs[start : start + k]
            if sets is not None:
                p.label_set = [labels[j] for j in sets[i]]
            if min_confidence is not None and p.top[0][1] < min_confidence:
                p.abstained = True
                p.reason = f"top probability {p.top[0][1]:.3f} is below the minimum confidence {min_confidence:g}"
    return predictions


def read_names(names: Iterable[str], alphabet: str, full_names: bool = False,
               model: str | None = None) -> tuple[list[Prediction], list[Prediction]]:
    """Each name as the model will read it (charclf.names.reader.read) -> (all predictions, the
    ones with letters to read)."""
    predictions, readable = [], []
    for name in names:
        reading = read(name, alphabet, full_names)
        as_read = reading.as_read if len(reading.as_read) <= MAX_READ_LETTERS else reading.as_read[:SHOWN] + "..."
        p = Prediction(name, as_read, caveats=list(reading.caveats), model=model, family_name=reading.family,
                       script=reading.script, reading=reading)
        if reading.problem is None:
            readable.append(p)
        else:
            p.abstained, p.reason = True, reading.problem
        predictions.append(p)
    return predictions, readable
