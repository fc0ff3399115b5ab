"""Where training batches come from: a folder of <Label>.txt files (held in memory, split on unique
names) or a CSV/TSV file (streamed, split by a hash of each name). Both give the same things:
labels, split sizes, the held-out names in memory, and each epoch's (names, targets) batches,
of similar lengths when bucketing, the same on every run with the same seed (so a resumed run
draws what an uninterrupted one would) and shared out among data-parallel ranks."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from charclf.data.dataset import Dataset, split_dataset, split_warnings
from charclf.data.extra import ExtraNames, ExtraSpec, extra_names
from charclf.data.stream import StreamDataset, open_dataset
from charclf.errors import DataError

if TYPE_CHECKING:  # torch is needed for training's batches only: evaluating reads the held-out names
    import torch

Batch = "tuple[list[str], torch.Tensor]"  # B folded names, (B,) label indices


class FolderSource:
    """A folder dataset: every split in memory; each epoch shuffles the training pairs (and, with
    extra names, the pool names it draws: charclf.data.extra)."""

    def __init__(self, dataset: Dataset, seed: int, extra: ExtraNames | None = None):
        self.labels, self.fingerprint, self.seed = dataset.labels, dataset.fingerprint, seed
        self.splits = split_dataset(dataset, seed=seed)
        self.sizes = {split: len(pairs) for split, pairs in self.splits.items()}
        self.held = {split: _unzip(pairs) for split, pairs in self.splits.items()}  # split -> (names, targets)
        self.train_counts = [0] * len(self.labels)
        for label in self.held["train"][1]:
            self.train_counts[label] += 1
        self.extra = extra
        if extra is not None:  # each epoch reads per_epoch pool names more; the off-distribution set is held
            self.fingerprint = f"{dataset.fingerprint}+{extra.fingerprint}"
            self.sizes["train"] += extra.per_epoch
            if extra.offdist:  # none when the dataset holds every extra name
                self.sizes["offdist"], self.held["offdist"] = len(extra.offdist), _unzip(extra.offdist)
            for _, label in extra.pool:
                self.train_counts[label] += extra.spec.weight
            self.train_counts = [round(count) for count in self.train_counts]

    def n_batches(self, batch_size: int) -> int:
        """Batches in one epoch, over all ranks."""
        return math.ceil(self.sizes["train"] / batch_size)

    def epoch(self, epoch: int, batch_size: int, bucket: bool, rank: int = 0, world: int = 1,
              sampling: str = "shuffle") -> Iterator[Batch]:
        """This rank's batches of `epoch`: ceil(n_batches / world) of them. `sampling` (config.SAMPLINGS):
        every training name once, or as many draws of a label, then one of its names."""
        import torch

        x, y = self.held["train"]
        if self.extra is not None:
            drawn = self.extra.drawn(epoch, self.seed)
            x, y = x + [name for name, _ in drawn], y + [label for _, label in drawn]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)  # this epoch's order
        order = by_label(y, generator) if sampling == "by-label" else torch.randperm(len(x), generator=generator).tolist()
        y = torch.tensor(y)
        if bucket:
            # Sort each run of 32 batches by name length, cut it into batches, shuffle the batches.
            chunks = []
            for start in range(0, len(order), 32 * batch_size):
                run = sorted(order[start : start + 32 * batch_size], key=lambda i: len(x[i]))
                chunks += [run[s : s + batch_size] for s in range(0, len(run), batch_size)]
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        else:
            chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        # Every rank drew the same chunks: rank r takes every world-th, the first ones repeated
        # at the end so that all ranks take the same number of steps.
        steps = math.ceil(len(chunks) / world)
        for chunk in [chunks[i % len(chunks)] for i in range(steps * world)][rank::world]:
            yield [x[i] for i in chunk], y[chunk]

    def notes(self) -> list[str]:
        """Warnings about labels that a split lacks."""
        return split_warnings(self.labels, self.splits)


class StreamSource:
    """A CSV/TSV file: the held-out splits as bounded samples, each epoch re-read from disk."""

    def __init__(self, stream: StreamDataset):
        self.stream, self.labels, self.fingerprint = stream, stream.labels, stream.fingerprint
        self.sizes = {split: stream.size(split) for split in ("train", "val", "test")}
        self.sizes["train"] = sum(stream.size(split) for split in stream.trained_on)  # what its epochs read
        self.held = {split: _unzip(pairs) for split, pairs in stream.held.items()}
        self.train_counts = [sum(counts) for counts in zip(*(stream.counts[split] for split in stream.trained_on))]

    def n_batches(self, batch_size: int) -> int:
        return self.stream.n_batches(batch_size)

    def epoch(self, epoch: int, batch_size: int, bucket: bool, rank: int = 0, world: int = 1,
              sampling: str = "shuffle") -> Iterator[Batch]:
        if sampling != "shuffle":  # a file read once per epoch cannot draw names at random
            raise DataError(f"sampling {sampling!r} needs a folder of <Label>.txt files, not a CSV/TSV file")
        for batch in self.stream.train_batches(epoch, batch_size, bucket, rank, world):
            yield [name for name, _ in batch], _tensor([label for _, label in batch])

    def notes(self) -> list[str]:
        """What the scan found: rows per label, labels a split lacks, skipped rows, samples."""
        ds = self.stream
        counts = ", ".join(f"{label} {sum(ds.counts[s][i] for s in ds.counts):,}" for i, label in enumerate(ds.labels))
        notes = [f"{ds.path}: rows per label: {counts}"]
        for i, label in enumerate(ds.labels):
            missing = [split for split in ("train", "val", "test") if ds.counts[split][i] == 0]
            if missing:
                consequence = "the model cannot learn it" if "train" in missing else "its scores there are 0"
                notes.append(f"warning: label {label} has no rows in the {' and '.join(missing)} split(s): {consequence}")
        if ds.skipped:
            notes.append(f"warning: {ds.skipped:,} row(s) of {ds.path} have no letters left after folding: skipped")
        for split, (names, _) in self.held.items():
            if len(names) < self.sizes[split]:
                notes.append(f"{split}: scored on a random sample of {len(names):,} of its {self.sizes[split]:,} rows")
        return notes


def open_source(path: Path, alphabet: str, seed: int, held: Sequence[str] = ("val", "test"),
                extra: ExtraSpec | None = None):
    """A FolderSource for a folder, a StreamSource for a CSV/TSV file (holding samples of `held`);
    `extra`: the extra names mixed into a folder's training names (charclf.data.extra)."""
    dataset = open_dataset(Path(path), alphabet, seed, held)
    if isinstance(dataset, StreamDataset):
        if extra is not None:
            raise DataError(f"extra names mix into a folder of <Label>.txt files; {path} is a CSV/TSV file")
        return StreamSource(dataset)
    if extra is None:
        return FolderSource(dataset, seed)
    return FolderSource(dataset, seed, extra_names(extra, dataset, split_dataset(dataset, seed=seed), seed, alphabet))


def with_validation_in_training(source):
    """A copy of `source` whose epochs read the validation names too, as training names (its
    train size and counts include them); the held-out splits it holds stay as they were."""
    if isinstance(source, StreamSource):
        return StreamSource(dataclasses.replace(source.stream, trained_on=("train", "val")))
    widened = copy.copy(source)
    widened.sizes = {**source.sizes, "train": source.sizes["train"] + source.sizes["val"]}
    (names, targets), (val_names, val_targets) = source.held["train"], source.held["val"]
    widened.held = {**source.held, "train": (names + val_names, targets + val_targets)}
    widened.train_counts = [count + val_targets.count(label) for label, count in enumerate(source.train_counts)]
    return widened


def by_label(targets: list[int], generator) -> list[int]:
    """len(targets) draws, the PyTorch tutorial's way: a label uniformly at random among those that have
    training names, then one of its names uniformly (with replacement) -> their positions."""
    import torch

    groups = {}
    for i, label in enumerate(targets):
        groups.setdefault(label, []).append(i)
    groups = list(groups.values())
    sizes = torch.tensor([len(g) for g in groups])
    labels = torch.randint(len(groups), (len(targets),), generator=generator)
    within = (torch.rand(len(targets), generator=generator) * sizes[labels]).long().clamp_max(sizes[labels] - 1)
    return [groups[label][i] for label, i in zip(labels.tolist(), within.tolist())]


def _unzip(pairs: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [name for name, _ in pairs], [label for _, label in pairs]


def _tensor(targets: list[int]):
    import torch

    return torch.tensor(targets)
