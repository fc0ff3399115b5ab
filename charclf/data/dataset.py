"""Datasets: a folder of <Label>.txt files -> deduplicated (name, label) pairs -> splits (no torch
here: evaluating needs the splits, not torch; charclf.data.tensors turns names into tensors)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from charclf.errors import DataError
from charclf.names.reader import training_reading
from charclf.names.text import DEFAULT_ALPHABET, MAX_NAME_CHARS, label_problem

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Dataset:
    """Unique (folded name, label index) pairs, sorted; `labels` are the sorted file stems."""

    labels: list[str]
    pairs: list[tuple[str, int]]

    @property
    def fingerprint(self) -> str:
        """Short hash of labels and pairs: tells whether two runs saw the same data."""
        h = hashlib.sha256("\n".join(self.labels).encode())
        for name, label in self.pairs:
            h.update(f"\n{name}\t{label}".encode())
        return h.hexdigest()[:16]


def read_label_file(path: Path) -> list[str]:
    """The lines of one <Label>.txt, decoded as UTF-8; bad bytes are reported by line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if len(line) > MAX_NAME_CHARS and len(line.decode("utf-8", errors="replace")) > MAX_NAME_CHARS:
            raise DataError(f"{path}, line {number}: the name is longer than {MAX_NAME_CHARS} characters, the most "
                            "a name may have")
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}, line {number}: not valid UTF-8 (byte 0x{line[e.start]:02x} at column "
                f"{e.start + 1}); save the file as UTF-8"
            ) from None
    return lines


def load_dataset(data_dir: Path, alphabet: str = DEFAULT_ALPHABET) -> Dataset:
    """Read every <Label>.txt in `data_dir`, fold names (names in other scripts: transliterate
    them, readings.training_reading), drop empties, collapse duplicates."""
    files = sorted(p for p in Path(data_dir).glob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"no <Label>.txt files in {data_dir}: each label needs a file of names")
    labels = [p.stem for p in files]
    for path, label in zip(files, labels):
        problem = label_problem(label)
        if problem:
            raise DataError(f"{ascii(str(path))[1:-1]}: its label {ascii(label)} cannot name a class: {problem}; "
                            "rename the file")
    if len(labels) < 2:
        raise DataError(f"only one label ({labels[0]}) in {data_dir}: a classifier needs at least two")
    pairs: set[tuple[str, int]] = set()
    for index, path in enumerate(files):
        names = {training_reading(line, alphabet) for line in read_label_file(path)} - {""}
        if not names:
            raise DataError(f"{path} holds no names (after folding to the alphabet)")
        pairs.update((name, index) for name in names)
    return Dataset(labels=labels, pairs=sorted(pairs))


def split_dataset(
    dataset: Dataset, seed: int = 0, fractions: Sequence[float] = SPLIT_FRACTIONS
) -> dict[str, list[tuple[str, int]]]:
    """Split on unique name strings, so that no name text is in two splits.

    Sorted unique names, shuffled by `random.Random(seed)`, first 80% train, next 10% val,
    rest test; every pair follows its name. Deterministic for a given seed.
    """
    names = sorted({name for name, _ in dataset.pairs})
    random.Random(seed).shuffle(names)
    n_train = int(len(names) * fractions[0])
    n_val = int(len(names) * fractions[1])
    where = {}
    for i, name in enumerate(names):
        where[name] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    splits: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
    for name, label in dataset.pairs:
        splits[where[name]].append((name, label))
    for split, pairs in splits.items():
        if not pairs:
            raise DataError(
                f"the {split} split is empty: {len(names)} unique names are too few to split "
                f"{int(fractions[0] * 100)}/{int(fractions[1] * 100)}/{int(fractions[2] * 100)}"
            )
    return splits


def split_warnings(labels: list[str], splits: dict[str, list[tuple[str, int]]]) -> list[str]:
    """One line per label that a split lacks: too few names to learn it or to score it."""
    warnings = []
    for index, label in enumerate(labels):
        counts = {split: sum(1 for _, y in pairs if y == index) for split, pairs in splits.items()}
        missing = [split for split, n in counts.items() if n == 0]
        if missing:
            consequence = "the model cannot learn it" if "train" in missing else "its scores there are 0"
            warnings.append(
                f"warning: label {label} has {sum(counts.values())} name(s), none in the "
                f"{' and '.join(missing)} split(s): {consequence}"
            )
    return warnings
