"""The library's front door: load a trained model, predict names, evaluate on a split."""

from __future__ import annotations

import os
from collections import Counter
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
# Prediction, UNKNOWN and UNREADABLE are imported from here too.
from charclf.prediction import UNKNOWN, UNREADABLE, Prediction, predict_names  # noqa: F401

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
        return torch.softmax(self.logits(folded) / self.temperature, dim=1)

    def predict(self, names: Iterable[str], k: int = 3, min_confidence: float | None = None) -> list[Prediction]:
        """Top-k labels with calibrated probabilities for each name (see prediction.predict_names)."""
        return predict_names(names, self.alphabet, self.labels, self._top_k, k, min_confidence)

    def _top_k(self, folded: list[str], k: int) -> tuple[list[int], list[float]]:
        probs, idx = self.probabilities(folded).topk(k, dim=1)  # (N, k) each
        return idx.flatten().tolist(), probs.flatten().tolist()

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
