"""The library's front door: load a trained model, predict names, evaluate on a split."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from charclf.checkpoint import Checkpoint, load_checkpoint
from charclf.data import load_dataset, split_dataset
from charclf.errors import CheckpointError, DataError
from charclf.locations import resolve_checkpoint
from charclf.metrics import majority_baseline, report
from charclf.model import batched_logits, pick_device
from charclf.text import fold


@dataclass
class Prediction:
    """One name's answer: its top labels with probabilities, or why it has none."""

    name: str
    as_read: str  # the name folded to the model's alphabet: what the model actually saw
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str | None:
        return self.top[0][0] if self.top else None

    def to_dict(self) -> dict:
        out = {"name": self.name, "as_read": self.as_read}
        if self.error:
            out["error"] = self.error
        else:
            out["predictions"] = [{"label": label, "probability": round(p, 6)} for label, p in self.top]
        return out

    def to_json(self) -> str:
        """json.dumps(self.to_dict()), character for character, written out directly (several times
        faster, which matters when predicting a file of millions of names)."""
        head = f'{{"name": {_json_str(self.name)}, "as_read": {_json_str(self.as_read)}, '
        if self.error:
            return head + f'"error": {_json_str(self.error)}}}'
        guesses = ", ".join(f'{{"label": {_json_str(label)}, "probability": {round(p, 6)!r}}}' for label, p in self.top)
        return head + f'"predictions": [{guesses}]}}'


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

    def probabilities(self, folded: list[str]) -> torch.Tensor:
        """Already-folded, non-empty names -> (N, n_classes) probabilities."""
        return torch.softmax(batched_logits(self.model, folded, self.alphabet, self.device), dim=1)

    def predict(self, names: Iterable[str], k: int = 3) -> list[Prediction]:
        """Top-k labels with probabilities for each name, in input order, in batches."""
        k = max(1, min(k, len(self.labels)))
        alphabet, labels = self.alphabet, self.labels
        predictions = [Prediction(name=name, as_read=fold(name, alphabet)) for name in names]
        readable = []
        for p in predictions:
            # Punctuation alone ("...", "'") is no name: at least one letter is needed.
            if any(map(str.isalpha, p.as_read)):
                readable.append(p)
            else:
                p.error = "no letters the model can read (after folding to its alphabet)"
        if readable:
            probs, idx = self.probabilities([p.as_read for p in readable]).topk(k, dim=1)
            for p, row_p, row_i in zip(readable, probs.tolist(), idx.tolist()):
                p.top = list(zip(map(labels.__getitem__, row_i), row_p))
        return predictions

    def evaluate(self, data_dir: Path, split: str = "test") -> dict:
        """Accuracy, macro-F1, per-label scores and the confusion matrix on one split of `data_dir`,
        split exactly as at training time (same seed)."""
        dataset = load_dataset(Path(data_dir), self.alphabet)
        if dataset.labels != self.labels:
            raise DataError(
                f"the dataset at {data_dir} has labels {', '.join(dataset.labels)}, but the model was "
                f"trained on {', '.join(self.labels)}"
            )
        seed = self.checkpoint.train_config.get("seed", 0)
        splits = split_dataset(dataset, seed=seed)
        pairs = splits[split]
        targets = [label for _, label in pairs]
        predicted = self.probabilities([name for name, _ in pairs]).argmax(1).tolist()
        result = report(targets, predicted, self.labels)
        result["split"] = split
        result["data_dir"] = str(data_dir)
        result["majority_baseline"] = majority_baseline([y for _, y in splits["train"]], targets, self.labels)
        result["same_data_as_training"] = dataset.fingerprint == self.checkpoint.train_config.get("data_fingerprint")
        return result
