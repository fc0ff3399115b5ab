"""Predictions from an exported .onnx model through ONNX Runtime, without torch.

Everything the model needs besides the graph (labels, alphabet, lower-casing, temperature, the
model card) is in the file's metadata (see export.py); the letters are encoded here with numpy."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Iterable

from charclf.errors import CheckpointError
from charclf.predict.evidence import ScriptEvidence
from charclf.predict.prediction import Prediction, predict_names

SUFFIX = ".onnx"
INSTALL_HINT = "reading .onnx models needs onnxruntime: pip install 'charclf[onnx]'"
BATCH = 1024  # names per run, all of one length


def is_onnx(path: str | os.PathLike | None) -> bool:
    return path is not None and Path(path).suffix.lower() == SUFFIX


def read_metadata(path: Path) -> dict[str, str]:
    """The charclf metadata of an .onnx file (ONNX Runtime reads it; the onnx package is not needed)."""
    return _session(Path(path), threads=1)[1]


def _session(path: Path, threads: int):
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(INSTALL_HINT) from None
    _check_file(path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for unreadable or invalid files
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].strip()
        raise CheckpointError(f"{path} is not a readable ONNX model: {reason[:200]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    missing = [key for key in ("charclf.labels", "charclf.alphabet", "charclf.temperature") if key not in meta]
    if missing:
        raise CheckpointError(f"{path} is an ONNX model, but not one charclf exported (no {', '.join(missing)} metadata)")
    return session, meta


MAX_BYTES = 1 << 30  # as for a .pt checkpoint's weights (charclf.files.archive)


def _check_file(path: Path) -> None:
    """A regular file of a sane size, or one line saying what it is instead (a pipe or a device
    is never read: it could block or never end)."""
    import stat

    try:
        mode = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"no model file at {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    kind = ("a folder" if stat.S_ISDIR(mode.st_mode) else "a pipe" if stat.S_ISFIFO(mode.st_mode)
            else "a device" if stat.S_ISCHR(mode.st_mode) or stat.S_ISBLK(mode.st_mode)
            else "a socket" if stat.S_ISSOCK(mode.st_mode) else None)
    if kind:
        raise CheckpointError(f"{path} is {kind}, not a model file")
    if mode.st_size > MAX_BYTES:
        raise CheckpointError(f"{path} is {mode.st_size:,} bytes, more than the {MAX_BYTES:,} a charclf model "
                              "may have; refused")


def _checked_metadata(meta: dict[str, str], path: Path) -> tuple[list[str], str, bool, float]:
    """(labels, alphabet, lower-casing, temperature) from the file's metadata, each checked as a
    .pt checkpoint's are (charclf.files.validation), or one line saying what is wrong."""
    try:
        labels, lowercase = json.loads(meta["charclf.labels"]), json.loads(meta.get("charclf.lowercase", "false"))
        alphabet, temperature = meta["charclf.alphabet"], float(meta["charclf.temperature"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: its charclf metadata is not readable ({str(e)[:100]})") from None
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) and x.strip() and x.isprintable()
                                                        for x in labels) and len(set(labels)) == len(labels)):
        raise CheckpointError(f"{path}: its labels are not unique, non-empty, printable strings")
    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise CheckpointError(f"{path}: its alphabet is empty or repeats letters")
    if not (isinstance(lowercase, bool) and 0.01 <= temperature <= 100):  # NaN fails the comparison
        raise CheckpointError(f"{path}: its lower-casing or temperature ({temperature!r}) is out of range")
    return labels, alphabet, lowercase, temperature


class OnnxClassifier:
    """The torch-free twin of classifier.Classifier for prediction: the same predict() and answers."""

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        import numpy as np

        self.path = Path(path)
        self.session, meta = _session(self.path, threads)
        self.labels, self.alphabet, self.lowercase, self.temperature = _checked_metadata(meta, self.path)
        try:
            self.card: dict = json.loads(meta.get("charclf.files.card", "{}"))
            # The script a name was typed in weighs in, as with the .pt checkpoint (charclf.predict.evidence).
            self.evidence = ScriptEvidence.for_checkpoint(self.labels, json.loads(meta.get("charclf.names.scripts", "{}")))
        except ValueError as e:
            raise CheckpointError(f"{self.path}: its charclf metadata is not readable ({str(e)[:100]})") from None
        self._np = np
        # Code point -> alphabet position, for names already folded to the alphabet.
        self._table = {ord(c): i for i, c in enumerate(self.alphabet)}

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int = 1) -> "OnnxClassifier":
        return cls(path, threads)

    def encode(self, folded: list[str]):
        """B folded names -> ((B, T) int64 alphabet positions, 0-padded; (B,) int64 lengths)."""
        np = self._np
        names = [name.lower() for name in folded] if self.lowercase else folded
        lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
        letters = np.zeros((len(names), int(lengths.max()) if len(names) else 0), dtype=np.int64)
        positions = [self._table[ord(c)] for c in "".join(names)]
        letters[np.arange(letters.shape[1])[None, :] < lengths[:, None]] = positions  # row-major: name by name
        return letters, lengths

    def probabilities(self, folded: list[str]):
        """Already-folded, non-empty names -> (N, n_classes) float32 calibrated probabilities, in input order.

        A name's probabilities do not depend on the names beside it, to the last bit: each run
        holds names of one length (no padding, which shifts the last bits), and never one name
        alone (ONNX Runtime's one-row products round otherwise than its many-row ones). So any
        split of a table (predict --csv's chunks, Spark's batches, Dask's partitions) gives the
        same answers."""
        np = self._np
        out = np.empty((len(folded), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(folded)), key=lambda i: len(folded[i]))
        for _, same_length in itertools.groupby(order, key=lambda i: len(folded[i])):
            group = list(same_length)
            for start in range(0, len(group), BATCH):
                chunk = group[start : start + BATCH]
                letters, lengths = self.encode([folded[i] for i in (chunk if len(chunk) > 1 else chunk * 2)])
                probs = self.session.run(["probabilities"], {"letters": letters, "lengths": lengths})[0]
                out[chunk] = probs[: len(chunk)]
        return out

    def predict(self, names: Iterable[str], k: int = 3, min_confidence: float | None = None,
                full_names: bool = False) -> list[Prediction]:
        """Top-k labels with calibrated probabilities for each name (see prediction.predict_names)."""
        return predict_names(names, self.alphabet, self.labels, self._top_k, k, min_confidence, full_names,
                             self.model_id)

    @functools.cached_property
    def model_id(self) -> str:
        """The first 16 hex digits of the model file's sha256: which model answered."""
        with open(self.path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()[:16]

    def _top_k(self, readable: list[Prediction], k: int) -> tuple[list[int], list[float], None]:
        np = self._np
        probs = self.probabilities([p.as_read for p in readable])
        if self.evidence is not None:
            probs = self.evidence.posterior([p.read_from for p in readable], probs, self.probabilities)
        # Best first; a stable sort on the negated values breaks ties by label order, as topk tends to.
        idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
        return idx.flatten().tolist(), np.take_along_axis(probs, idx, axis=1).flatten().astype(float).tolist(), None
