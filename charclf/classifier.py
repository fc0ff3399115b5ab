"""The library's front door: load a trained model, predict names, evaluate on a split."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from charclf.checkpoint import Checkpoint, load_checkpoint
from charclf.data import split_dataset
from charclf.errors import CheckpointError, DataError
from charclf.locations import resolve_checkpoint
from charclf.metrics import majority_baseline, report
from charclf.model import batched_logits, pick_device
from charclf.stream import StreamDataset, open_dataset
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
        predictions = [Prediction(name=name, as_read=fold(name, self.alphabet)) for name in names]
        readable = []
        for p in predictions:
            # Punctuation alone ("...", "'") is no name: at least one letter is needed.
            if any(c.isalpha() for c in p.as_read):
                readable.append(p)
            else:
                p.error = "no letters the model can read (after folding to its alphabet)"
        if readable:
            probs, idx = self.probabilities([p.as_read for p in readable]).topk(k, dim=1)
            for p, row_p, row_i in zip(readable, probs.tolist(), idx.tolist()):
                p.top = [(self.labels[i], prob) for i, prob in zip(row_i, row_p)]
        return predictions

    def evaluate(self, data_dir: Path, split: str = "test") -> dict:
        """Accuracy, macro-F1, per-label scores and the confusion matrix on one split of `data_dir`
        (a folder, or a CSV/TSV file: then on a sample of at most stream.HELD_MAX of the split's
        rows), split exactly as at training time (same seed)."""
        seed = self.checkpoint.train_config.get("seed", 0)
        dataset = open_dataset(Path(data_dir), self.alphabet, seed, held=(split,))
        if dataset.labels != self.labels:
            raise DataError(
                f"the dataset at {data_dir} has labels {', '.join(dataset.labels)}, but the model was "
                f"trained on {', '.join(self.labels)}"
            )
        if isinstance(dataset, StreamDataset):
            pairs, split_rows = dataset.held[split], dataset.size(split)
            # The train split's label counts, as a Counter of label indices: all the baseline needs.
            train_targets = Counter(dict(enumerate(dataset.counts["train"])))
        else:
            splits = split_dataset(dataset, seed=seed)
            pairs, split_rows = splits[split], len(splits[split])
            train_targets = [y for _, y in splits["train"]]
        targets = [label for _, label in pairs]
        predicted = self.probabilities([name for name, _ in pairs]).argmax(1).tolist()
        result = report(targets, predicted, self.labels)
        result["split"] = split
        result["split_rows"] = split_rows  # more than n when a large file's split was sampled
        result["data_dir"] = str(data_dir)
        result["majority_baseline"] = majority_baseline(train_targets, targets, self.labels)
        result["same_data_as_training"] = dataset.fingerprint == self.checkpoint.train_config.get("data_fingerprint")
        return result
