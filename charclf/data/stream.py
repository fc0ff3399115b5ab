"""A CSV or TSV file of name,label rows, read as a stream: memory stays flat however long it is.

- One pass (`scan`) finds the labels (sorted) and their counts per split, fingerprints the bytes,
  and keeps a bounded, seeded random sample (reservoir sampling) of the held-out splits.
- Each row's split comes from a hash of its folded name and the seed, so it needs no memory of
  other rows and a name text is never in two splits.
- Every training epoch reads the file again: train rows fill a buffer of BUFFER names, which is
  shuffled (seeded by seed and epoch), sorted by length into batches, and the batches shuffled.
- Data-parallel ranks all read the same order and each takes every world_size-th batch.

The file is read by charclf.data.delimited (the same reader as `predict --csv`: delimiter, bounds,
errors). A bad row (not two columns, an empty label, bytes that are not UTF-8, a line or cell
beyond the reader's bounds) stops with a one-line DataError naming the file and line; a name
with no letter left after folding is skipped and counted, as the folder reader drops it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from charclf.data.dataset import SPLITS, load_dataset
from charclf.data.delimited import open_table
from charclf.errors import DataError
from charclf.names.reader import training_reading
from charclf.names.text import MAX_NAME_CHARS, label_problem

BUFFER = 65_536  # train names shuffled together; also the most any epoch holds at once
HELD_MAX = 100_000  # the largest validation/test sample kept in memory (a uniform sample beyond)
MAX_LABELS = 10_000  # more distinct labels than this is almost surely a file read the wrong way


def open_dataset(path: Path, alphabet: str, seed: int, held: Sequence[str] = ("val", "test")):
    """A folder of <Label>.txt files (data.Dataset), or a CSV/TSV file (a StreamDataset)."""
    path = Path(path)
    return scan(path, alphabet, seed, held) if path.is_file() else load_dataset(path, alphabet)


def split_of(name: str, seed: int) -> str:
    """The split of a folded name: blake2b of seed and name -> a point in [0, 1) -> 80/10/10."""
    digest = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64
    return "train" if point < 0.8 else "val" if point < 0.9 else "test"


@dataclass(frozen=True)
class Layout:
    """How to read the file's rows: the delimiter, whether line 1 is a header, the column order."""

    delimiter: str
    header: bool
    name_column: int  # 0, or 1 when a header says label,name


@dataclass
class StreamDataset:
    path: Path
    alphabet: str
    seed: int
    layout: Layout
    labels: list[str]
    counts: dict[str, list[int]]  # split -> rows per label (label index order)
    held: dict[str, list[tuple[str, int]]]  # split -> (name, label index), at most HELD_MAX, file order lost
    fingerprint: str  # of the file's bytes
    skipped: int  # rows whose name has no letter left after folding
    trained_on: tuple[str, ...] = ("train",)  # the splits whose rows the epochs read (charclf.training.refit: also "val")

    def size(self, split: str) -> int:
        return sum(self.counts[split])

    def n_batches(self, batch_size: int) -> int:
        """Batches in one epoch over all ranks: each full buffer, then the rest, cut by batch_size."""
        full, rest = divmod(sum(self.size(split) for split in self.trained_on), BUFFER)
        return full * math.ceil(BUFFER / batch_size) + math.ceil(rest / batch_size)

    def train_batches(self, epoch: int, batch_size: int, bucket: bool, rank: int = 0,
                      world_size: int = 1) -> Iterator[list[tuple[str, int]]]:
        """This rank's batches of (name, label index) for `epoch`: exactly ceil(n_batches / world_size)."""
        expected = self.n_batches(batch_size)
        steps = math.ceil(expected / world_size)
        first, mine, total = None, 0, 0
        for batch in self._epoch(epoch, batch_size, bucket):
            if total == 0:
                first = batch  # kept to even out the ranks' steps at the end
            if total % world_size == rank:
                mine += 1
                yield batch
            total += 1
        if total != expected:
            raise DataError(f"{self.path} changed during training ({total} batches in epoch {epoch}, "
                            f"{expected} when it was scanned); start the run again")
        # A rank left one batch short repeats the epoch's first: collectives must pair up.
        for _ in range(steps - mine):
            yield first

    def _epoch(self, epoch: int, batch_size: int, bucket: bool) -> Iterator[list[tuple[str, int]]]:
        rng = random.Random(f"charclf:{self.seed}:{epoch}")  # str seeds are hashed stably (sha512)
        index = {label: i for i, label in enumerate(self.labels)}
        buffer: list[tuple[str, int]] = []
        for _, name, label in read_rows(self.path, self.layout, self.alphabet):
            if name and split_of(name, self.seed) in self.trained_on:
                buffer.append((name, index[label]))
                if len(buffer) == BUFFER:
                    yield from _batches(buffer, batch_size, bucket, rng)
                    buffer = []
        if buffer:
            yield from _batches(buffer, batch_size, bucket, rng)


def _batches(buffer: list, batch_size: int, bucket: bool, rng: random.Random) -> list[list]:
    """Shuffle the buffer, cut it into batches (of similar lengths when bucketing), shuffle those."""
    rng.shuffle(buffer)
    if bucket:
        buffer.sort(key=lambda pair: len(pair[0]))  # stable: equal lengths stay shuffled
    batches = [buffer[i : i + batch_size] for i in range(0, len(buffer), batch_size)]
    rng.shuffle(batches)
    return batches


class Reservoir:
    """A uniform random sample of at most `size` items of a stream (Algorithm R), seeded."""

    def __init__(self, size: int, rng: random.Random):
        self.size, self.rng, self.seen, self.items = size, rng, 0, []

    def add(self, item) -> None:
        if self.seen < self.size:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen + 1)
            if j < self.size:
                self.items[j] = item
        self.seen += 1


def scan(path: Path, alphabet: str, seed: int, held: Sequence[str] = ("val", "test"),
         held_max: int | None = None) -> StreamDataset:
    """The first pass over a CSV/TSV file: labels, counts per split, samples of at most `held_max`
    (default HELD_MAX) rows of the `held` splits."""
    path, held_max = Path(path), held_max or HELD_MAX
    layout = detect_layout(path)
    counts = {split: Counter() for split in SPLITS}
    samples = {split: Reservoir(held_max, random.Random(f"charclf:{seed}:{split}")) for split in held}
    labels: set[str] = set()
    digest = hashlib.sha256()
    skipped = 0
    for number, name, label in read_rows(path, layout, alphabet, digest):
        if not name:
            skipped += 1
            continue
        if label not in labels:
            problem = label_problem(label)
            if problem:
                raise DataError(f"{path}, line {number}: the label {ascii(label)[:80]} cannot name a class: {problem}")
            if len(labels) == MAX_LABELS:
                raise DataError(f"{path}, line {number}: more than {MAX_LABELS} distinct labels; are the "
                                "columns name then label?")
            labels.add(label)
        split = split_of(name, seed)
        counts[split][label] += 1
        if split in samples:
            samples[split].add((name, label))
    ordered = sorted(labels)
    if len(ordered) < 2:
        raise DataError(f"{path} has {len(ordered)} label(s) ({', '.join(ordered) or 'no rows'}): a classifier "
                        "needs at least two")
    for split in SPLITS:
        if not counts[split]:
            raise DataError(f"the {split} split of {path} is empty: {sum(sum(c.values()) for c in counts.values())} "
                            "readable rows are too few to split 80/10/10")
    index = {label: i for i, label in enumerate(ordered)}
    return StreamDataset(
        path=path, alphabet=alphabet, seed=seed, layout=layout, labels=ordered,
        counts={split: [counts[split][label] for label in ordered] for split in SPLITS},
        held={split: [(name, index[label]) for name, label in sample.items] for split, sample in samples.items()},
        fingerprint=digest.hexdigest()[:16], skipped=skipped,
    )


def detect_layout(path: Path) -> Layout:
    """Delimiter from the extension (.csv, .tsv, .tab), else sniffed (charclf.data.delimited); line 1
    is a header when it reads name,label (or label,name) in any case."""
    with open_table(path, fallback=None) as table:
        number, _, first = next(table.records, (0, 0, []))
    columns = [cell.strip().lower() for cell in first] if number == 1 else []
    header = columns in (["name", "label"], ["label", "name"])
    return Layout(table.delimiter, header, 1 if columns == ["label", "name"] else 0)


def read_rows(path: Path, layout: Layout, alphabet: str, digest=None) -> Iterator[tuple[int, str, str]]:
    """(line number, folded name, label) for every data row; blank lines are skipped."""
    for number, name, label in raw_rows(path, layout, digest):
        yield number, training_reading(name, alphabet), label


def raw_rows(path: Path, layout: Layout, digest=None) -> Iterator[tuple[int, str, str]]:
    """(line number, name as written, label) for every data row; blank lines are skipped.
    `digest`: a hashlib object fed the file's bytes."""
    with open_table(path, layout.delimiter, digest=digest) as table:
        for number, last, row in table.records:
            if last > number:  # a quoted field ran over line ends: a quote left open
                raise DataError(f"{path}, line {number}: a quote opened on this line is never closed "
                                f"(the row ran on to line {last})")
            if not row or (number == 1 and layout.header):
                continue
            if len(row) != 2:
                raise DataError(f"{path}, line {number}: {len(row)} column(s), expected 2 (name and label)")
            name, label = row[layout.name_column], row[1 - layout.name_column].strip()
            if not label:
                raise DataError(f"{path}, line {number}: the label is empty")
            if len(name) > MAX_NAME_CHARS:
                raise DataError(f"{path}, line {number}: the name is longer than {MAX_NAME_CHARS} characters, the "
                                "most a name may have")
            yield number, name, label
