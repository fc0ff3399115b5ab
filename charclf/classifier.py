"""The library's front door: load a trained model, predict names, evaluate on a split."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from charclf.calibration import coverage_curve, scores, selective
from charclf.checkpoint import Checkpoint, load_checkpoint
from charclf.batches import open_source
from charclf.errors import CheckpointError, DataError
from charclf.locations import resolve_checkpoint
from charclf.loop import evaluate
from charclf.metrics import majority_baseline
from charclf.model import batched_logits, pick_device
from charclf.text import DEFAULT_ALPHABET, MAX_NAME_CHARS, read_name

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


class Classifier:
    """A trained name classifier.

    >>> clf = Classifier.load()                         # doctest: +SKIP
    >>> clf.predict(["Satoshi", "Jones"], k=2)[0].top   # doctest: +SKIP
    [('Japanese', 0.949...), ('Arabic', 0.009...)]
    """

    def __init__(self, checkpoint: Checkpoint, device: torch.device | str = "auto", path: Path | None = None):
        self.checkpoint = checkpoint
        self.path = path
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        try:
            self.model = checkpoint.build_model(self.device)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}" if path else str(e)) from None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: torch.device | str = "auto") -> "Classifier":
        """Load `path`, or the model `charclf train` last wrote to its default place, or the shipped one."""
        path = resolve_checkpoint(path)
        return cls(load_checkpoint(path), device=device, path=path)

    @property
    def labels(self) -> list[str]:
        return self.checkpoint.labels

    @property
    def alphabet(self) -> str:
        return self.checkpoint.alphabet

    @property
    def temperature(self) -> float:
        """Logits are divided by this before the softmax (fitted on validation at training time)."""
        return self.checkpoint.temperature

    def logits(self, folded: list[str]) -> torch.Tensor:
        """Already-folded, non-empty names -> (N, n_classes) raw logits."""
        return batched_logits(self.model, folded, self.alphabet, self.device)

    def probabilities(self, folded: list[str]) -> torch.Tensor:
        """Already-folded, non-empty names -> (N, n_classes) calibrated probabilities."""
        probabilities = torch.softmax(self.logits(folded) / self.temperature, dim=1)
        if not torch.isfinite(probabilities).all():  # finite but enormous weights can still overflow
            raise CheckpointError(f"{self.path or 'the model'}: its outputs are not finite numbers; its weights are broken")
        return probabilities

    def predict(self, names: Iterable[str], k: int = 3, min_confidence: float | None = None) -> list[Prediction]:
        """Top-k labels with calibrated probabilities for each name, in input order, in batches.

        Names in any script are transliterated to Latin first (`as_read`). A name with no
        letters left, or (with `min_confidence`) whose top probability is below it, is
        answered `unknown` with the reason (and, for the latter, its best guess).
        """
        k = max(1, min(k, len(self.labels)))
        alphabet, labels = self.alphabet, self.labels
        plain = alphabet == DEFAULT_ALPHABET
        predictions, readable = [], []
        for name in names:
            if plain and name.isascii() and name.isalpha() and len(name) <= MAX_NAME_CHARS:  # most names (Smith)
                p = Prediction(name, name)
                readable.append(p)
            elif len(name) > MAX_NAME_CHARS:  # the network's memory grows with the length
                p = Prediction(name, "", abstained=True, reason=f"longer than {MAX_NAME_CHARS} characters")
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
            probs, idx = self.probabilities([p.as_read for p in readable]).topk(k, dim=1)  # (N, k) each
            # (label, probability) pairs of all names at once, then k per name: fewer steps per name.
            pairs = list(zip(map(labels.__getitem__, idx.flatten().tolist()), probs.flatten().tolist()))
            for p, start in zip(readable, range(0, len(pairs), k)):
                p.top = pairs[start : start + k]
                if min_confidence is not None and p.top[0][1] < min_confidence:
                    p.abstained = True
                    p.reason = f"top probability {p.top[0][1]:.3f} is below the minimum confidence {min_confidence:g}"
        return predictions

    def evaluate(self, data_dir: Path, split: str = "test", min_confidence: float | None = None,
                 bins: int = 15) -> dict:
        """Accuracy, macro-F1, per-label scores and the confusion matrix on one split of `data_dir`
        (a folder, or a CSV/TSV file: then on a sample of at most stream.HELD_MAX of the split's
        rows), split exactly as at training time (same seed); calibration (ECE over `bins` bins,
        Brier score, NLL) before and after the temperature; with `min_confidence`, the coverage and
        accuracy of answering only above it ("selective"), and the whole coverage curve."""
        seed = self.checkpoint.train_config.get("seed", 0)
        source = open_source(Path(data_dir), self.alphabet, seed, held=(split,))
        if source.labels != self.labels:
            raise DataError(
                f"the dataset at {data_dir} has labels {', '.join(source.labels)}, but the model was "
                f"trained on {', '.join(self.labels)}"
            )
        names, targets = source.held[split]
        result = evaluate(self.model, names, targets, self.labels, self.alphabet, self.device)
        logits = result.pop("logits")
        result.pop("loss")
        result["split"] = split
        result["split_rows"] = source.sizes[split]  # more than n when a large file's split was sampled
        result["data_dir"] = str(data_dir)
        train_counts = Counter(dict(enumerate(source.train_counts)))  # all the baseline needs
        result["majority_baseline"] = majority_baseline(train_counts, targets, self.labels)
        result["same_data_as_training"] = source.fingerprint == self.checkpoint.train_config.get("data_fingerprint")
        result["calibration"] = self._calibration(logits, torch.tensor(targets), bins)
        if min_confidence is not None:
            confidence = torch.softmax(logits / self.temperature, dim=1).max(dim=1).values
            correct = logits.argmax(1) == torch.tensor(targets)
            result["selective"] = selective(confidence, correct, min_confidence)
            result["coverage_curve"] = coverage_curve(confidence, correct)
        return result

    def _calibration(self, logits: torch.Tensor, targets: torch.Tensor, bins: int) -> dict:
        """ECE, Brier score and NLL of the raw softmax (before) and with the temperature (after)."""
        return {
            "temperature": self.temperature,
            "fit_on": self.checkpoint.calibration.get("fit_on"),
            "bins": bins,
            "before": scores(torch.softmax(logits, dim=1), targets, bins),
            "after": scores(torch.softmax(logits / self.temperature, dim=1), targets, bins),
        }
