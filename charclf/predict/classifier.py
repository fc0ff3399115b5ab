"""The library's front door: load a trained model, predict names, evaluate on a split.

Everything after the network's logits (temperature, the script evidence, priors, label sets,
abstention, scores) runs here in numpy, the same for both backends: ONNX Runtime on an exported
.onnx file (charclf.predict.onnx_runtime; no torch needed) or torch on a .pt checkpoint
(charclf.predict.torch_backend). Which one loads is decided by charclf.predict.loading (charclf.load)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from charclf.data.batches import open_source
from charclf.errors import CheckpointError, DataError
from charclf.files.description import ModelDescription
from charclf.names.reader import Reading
from charclf.predict import conformal, priors
from charclf.predict.calibration import check_bins, coverage_curve, scores, selective, softmax
from charclf.predict.evidence import ScriptEvidence
from charclf.predict.options import PredictOptions, check

# Prediction, UNKNOWN, UNREADABLE and EMPTY are imported from here too.
from charclf.predict.prediction import EMPTY, UNKNOWN, UNREADABLE, Prediction, predict_names  # noqa: F401
from charclf.predict.scoring import score
from charclf.report.metrics import majority_baseline, report

HEX = re.compile(r"[0-9a-f]{16,64}")  # a model id: the start of a sha256 (charclf.predict.loading)


class Backend(Protocol):
    name: str  # "onnx" or "torch"
    precision: str
    device: object

    def logits(self, folded: list[str]) -> np.ndarray: ...  # (N, n_classes) float32

    def describe(self) -> str: ...


class Classifier:
    """A trained name classifier.

    >>> clf = charclf.load()                            # doctest: +SKIP
    >>> clf.predict(["Satoshi", "Jones"], k=2)[0].top   # doctest: +SKIP
    [('Japanese', 0.949...), ('Arabic', 0.009...)]
    """

    def __init__(self, description: ModelDescription, backend: Backend, path: Path | None = None,
                 model_id: str | None = None):
        self.checkpoint = description  # what the model file says (a files.checkpoint.Checkpoint for a .pt)
        self.backend = backend
        self.path = path
        if model_id is not None and not (isinstance(model_id, str) and HEX.fullmatch(model_id)):
            raise CheckpointError(f"a model id is hex digits of a sha256, not {str(model_id)[:40]!r}")
        self._model_id = model_id
        # P(script | label), combined with the network's probabilities (charclf.predict.evidence); None: no table.
        self.evidence = ScriptEvidence.for_checkpoint(description.labels, description.scripts)

    @classmethod
    def from_checkpoint(cls, checkpoint, device="auto", precision: str | None = None,
                        path: Path | None = None) -> "Classifier":
        """A loaded files.checkpoint.Checkpoint, run by torch."""
        from charclf.predict.torch_backend import TorchBackend

        return cls(checkpoint, TorchBackend(checkpoint, device, precision, path), path)

    def __repr__(self) -> str:
        c = self.checkpoint.model_config
        if c.arch == "ngram":
            shape = f"character 1-{c.ngram_max_n}-grams in {c.ngram_buckets:,} buckets"
        else:
            shape = (f"{'bidirectional' if c.bidirectional else 'one direction'}, hidden {c.hidden_size} x "
                     f"{c.num_layers} layer(s), embedding {c.embedding_dim}, pooling {c.pooling}"
                     + (f", {c.members} members" if c.members > 1 else ""))
        parameters = self.checkpoint.metrics.get("parameters")
        counted = f"{parameters:,} parameters, " if isinstance(parameters, int) else ""
        return (f"<Classifier {c.arch} ({shape}), {counted}{len(self.labels)} labels, temperature "
                f"{self.temperature:.4f}, {self.backend.describe()}, from {self.path}>")

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

    @property
    def precision(self) -> str:
        return self.backend.precision

    @property
    def device(self):
        return self.backend.device

    def logits(self, folded: list[str]) -> np.ndarray:
        """Already-folded, non-empty names -> (N, n_classes) float32 raw logits."""
        logits = self.backend.logits(folded)
        if not np.isfinite(logits).all():  # finite but enormous weights can still overflow
            raise CheckpointError(f"{self.path or 'the model'}: its outputs are not finite numbers; its weights "
                                  "are broken")
        return logits

    def probabilities(self, folded: list[str], prior: str | dict | None = None) -> np.ndarray:
        """Already-folded, non-empty names -> (N, n_classes) calibrated probabilities; with a
        `prior` (see charclf.predict.priors), reweighted to that population's label frequencies."""
        return self.reweight(softmax(self.logits(folded), self.temperature), prior)

    def answer(self, readings: list[Reading], prior: str | dict | None = None) -> np.ndarray:
        """Readable names as read (charclf.names.reader.read) -> (N, n_classes) the probabilities
        every door answers with: the network's logits of what each reads, the temperature, the
        script each was typed in (with the labels' own readings) as evidence, and the `prior`."""
        probs = self.probabilities([r.as_read for r in readings])  # (N, C)
        if self.evidence is not None:
            probs = self.evidence.posterior(readings, probs, self.probabilities)
        return self.reweight(probs, prior)  # both per-label products: the order does not matter

    def reweight(self, probabilities: np.ndarray, prior: str | dict | None) -> np.ndarray:
        """(N, n_classes) calibrated probabilities under the target `prior` (None or "train": as they are)."""
        target = None if prior is None else priors.target_prior(prior, self.labels)
        if target is None:
            return probabilities
        return priors.reweight(probabilities, target, priors.training_prior(self.train_counts, str(prior)))

    @property
    def train_counts(self) -> list[int] | None:
        """How many training names each label had (recorded at training time; None in old files)."""
        return self.checkpoint.calibration.get("train_counts")

    @functools.cached_property
    def model_id(self) -> str | None:
        """The first 16 hex digits of the .pt checkpoint's sha256 (for an .onnx export, of the .pt it
        came from): which model answered, whichever backend ran it."""
        if self._model_id:
            return self._model_id[:16]
        if self.path is None:
            return None
        with open(self.path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()[:16]

    def set_threshold(self, coverage: float) -> float:
        """The conformal score threshold for `coverage` (see charclf.predict.conformal)."""
        stored = self.checkpoint.calibration.get("conformal")
        if not stored:
            raise CheckpointError("this checkpoint has no conformal calibration (retrain it with this "
                                  "version of charclf to get label sets)")
        return conformal.threshold(stored, float(check("coverage", coverage)))

    def predict(self, names: Iterable[str], k: int = 3, min_confidence: float | None = None,
                coverage: float | None = None, prior: str | dict | None = None,
                full_names: bool = False) -> list[Prediction]:
        """Top-k labels with calibrated probabilities for each name, in input order, in batches.

        Names in any script are transliterated to Latin first (`as_read`), and the script they
        were typed in weighs in (charclf.predict.evidence: a name in Hangul is Korean). A name with no
        letters left, or (with `min_confidence`) whose top probability is below it, is
        answered `unknown` with the reason (and, for the latter, its best guess). With a
        `coverage` (0-1), each name also gets its conformal label set (`label_set`); with a
        `prior`, the probabilities are reweighted to that population (charclf.predict.priors). The two
        do not combine: the sets' guarantee holds for the training population only. With
        `full_names`, each name is a full name whose family name is found and read
        (charclf.names.fullnames; the part is in `family_name`).
        """
        options = PredictOptions(k, min_confidence, coverage, prior, full_names)  # OptionError (a ValueError)
        q = None if coverage is None else self.set_threshold(coverage)

        def top_k(readable: list[Prediction], k: int):
            probs = self.answer([p.reading for p in readable], prior)  # (N, C)
            # Best first; a stable sort on the negated values breaks ties by label order.
            idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
            top_p = np.take_along_axis(probs, idx, axis=1)
            sets = conformal.label_sets(probs, q) if q is not None else None
            return idx.flatten().tolist(), top_p.astype(float).flatten().tolist(), sets

        return predict_names(names, self.alphabet, self.labels, top_k, options.k, options.min_confidence,
                             options.full_names, self.model_id)

    def explain(self, name: str, k: int = 3, prior: str | dict | None = None) -> dict:
        """How the answer for `name` forms letter by letter: the top-k labels after each letter,
        from one batch of all its prefixes, each answered as `predict` answers (see
        charclf.predict.explain.explain); the last letter's row is predict's answer."""
        from charclf.predict.explain import explain

        return explain(self, name, k=k, prior=prior)

    def evaluate(self, data_dir: Path, split: str = "test", min_confidence: float | None = None,
                 bins: int = 15, prior: str | dict | None = None, extra_names: str | None = None) -> dict:
        """Accuracy, macro-F1, per-label scores and the confusion matrix on one split of `data_dir`
        (a folder, or a CSV/TSV file: then on a sample of at most stream.HELD_MAX of the split's
        rows), split exactly as at training time (same seed); calibration (ECE over `bins` bins,
        Brier score, NLL) before and after the temperature; with `min_confidence`, the coverage and
        accuracy of answering only above it ("selective"), and the whole coverage curve; the
        conformal label sets' coverage and size at conformal.LEVELS ("label_sets"). With a
        `prior`, every score is of the reweighted probabilities (and there are no label sets). With
        extra names (`extra_names`, else those the model trained with: charclf.data.extra), also
        accuracy and macro-F1 on their off-distribution set ("offdist"); where they cannot be read
        (mimesis not installed), why not ("offdist_missing")."""
        check_bins(bins)
        seed = self.checkpoint.train_config.get("seed", 0)
        source, missing = _source_with_extra(Path(data_dir), self.alphabet, seed, split, self.checkpoint.train_config,
                                             extra_names)
        if source.labels != self.labels:
            raise DataError(
                f"the dataset at {data_dir} has labels {', '.join(source.labels)}, but the model was "
                f"trained on {', '.join(self.labels)}"
            )
        names, targets = source.held[split]
        logits = self.logits(names).astype(np.float64)  # (N, C)
        result = score(logits, targets, self.labels)
        del result["logits"], result["loss"]
        result.update(split=split, split_rows=source.sizes[split], data_dir=str(data_dir))  # rows: sampled or not
        train_counts = Counter(dict(enumerate(source.train_counts)))  # all the baseline needs
        result["majority_baseline"] = majority_baseline(train_counts, targets, self.labels)
        trained_on = str(self.checkpoint.train_config.get("data_fingerprint"))
        # The dataset's part of the fingerprints (extra names add theirs after a "+"): the splits are the dataset's.
        result["same_data_as_training"] = source.fingerprint.split("+")[0] == trained_on.split("+")[0]
        if "offdist" in source.held:
            offdist_names, offdist_targets = source.held["offdist"]
            done = score(self.logits(offdist_names).astype(np.float64), offdist_targets, self.labels)
            result["offdist"] = {"accuracy": done["accuracy"], "macro_f1": done["macro_f1"], "n": done["n"],
                                 "source": source.extra.spec.source}
        elif missing:
            result["offdist_missing"] = missing
        truth = np.asarray(targets, dtype=np.int64)
        if prior not in (None, "train"):
            probs = self.reweight(softmax(logits, self.temperature), prior)
            result.update(report(targets, probs.argmax(axis=1).tolist(), self.labels), prior=prior)
            logits = np.log(np.maximum(probs, 1e-30)) * self.temperature  # softmax(logits / T) gives probs back
        elif self.checkpoint.calibration.get("conformal"):
            result["label_sets"] = conformal.report(softmax(logits, self.temperature), truth,
                                                    self.checkpoint.calibration["conformal"])
        result["calibration"] = self._calibration(logits, truth, bins)
        if min_confidence is not None:
            confidence = softmax(logits, self.temperature).max(axis=1)
            correct = logits.argmax(axis=1) == truth
            result["selective"] = selective(confidence, correct, min_confidence)
            result["coverage_curve"] = coverage_curve(confidence, correct)
        return result

    def _calibration(self, logits: np.ndarray, targets: np.ndarray, bins: int) -> dict:
        """ECE, Brier score and NLL of the raw softmax (before) and with the temperature (after)."""
        return {
            "temperature": self.temperature,
            "fit_on": self.checkpoint.calibration.get("fit_on"),
            "bins": bins,
            "before": scores(softmax(logits), targets, bins),
            "after": scores(softmax(logits, self.temperature), targets, bins),
        }


def _source_with_extra(data_dir: Path, alphabet: str, seed: int, split: str, train_config: dict,
                       extra_names: str | None):
    """(the batch source of `split`, with the extra names' off-distribution set when there are extra
    names, why not when they cannot be read). The model's own extra names are optional: a model
    trained on mimesis's lists is still evaluated where mimesis is not installed."""
    from charclf.data.extra import ExtraSpec

    spec = ExtraSpec(extra_names) if extra_names else ExtraSpec.of(train_config)
    if spec is None:
        return open_source(data_dir, alphabet, seed, held=(split,)), None
    try:
        return open_source(data_dir, alphabet, seed, held=(split,), extra=spec), None
    except DataError as e:
        if extra_names:  # asked for: an error
            raise
        return open_source(data_dir, alphabet, seed, held=(split,)), str(e)

