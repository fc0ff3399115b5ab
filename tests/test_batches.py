"""The batch sources: a folder and a streamed CSV give the same kind of batches, each epoch's
order is a function of (seed, epoch) alone, and data-parallel ranks share an epoch out evenly."""

import csv
import math
import random
from collections import Counter

import pytest
import torch

from charclf.data.batches import FolderSource, StreamSource, open_source
from charclf.data.dataset import load_dataset
from charclf.names.text import DEFAULT_ALPHABET


@pytest.fixture
def folder(tmp_path):
    rng = random.Random(0)
    root = tmp_path / "names"
    root.mkdir()
    for label, letters in (("A", "abc"), ("B", "mno"), ("C", "xyz")):
        names = {"".join(rng.choice(letters + "e") for _ in range(rng.randint(2, 12))).title() for _ in range(150)}
        (root / f"{label}.txt").write_text("\n".join(sorted(names)) + "\n")
    return root


@pytest.fixture
def table(folder, tmp_path):
    """The same names as `folder`, as a CSV file."""
    path = tmp_path / "names.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "label"])
        for file in sorted(folder.glob("*.txt")):
            for name in file.read_text().split():
                writer.writerow([name, file.stem])
    return path


def epoch(source, number, batch_size=16, bucket=True, rank=0, world=1):
    return [(names, targets.tolist()) for names, targets in source.epoch(number, batch_size, bucket, rank, world)]


@pytest.mark.parametrize("kind", ["folder", "table"])
def test_both_sources_give_every_training_pair_once_per_epoch(kind, folder, table):
    source = open_source(folder if kind == "folder" else table, DEFAULT_ALPHABET, seed=0)
    assert isinstance(source, FolderSource if kind == "folder" else StreamSource)
    assert source.labels == ["A", "B", "C"] and sum(source.train_counts) == source.sizes["train"]
    batches = epoch(source, 1)
    assert len(batches) == source.n_batches(16) == math.ceil(source.sizes["train"] / 16)
    pairs = Counter((name, label) for names, targets in batches for name, label in zip(names, targets))
    assert sum(pairs.values()) == source.sizes["train"] and max(pairs.values()) == 1
    assert all(isinstance(n, str) for names, _ in batches for n in names)
    for split in ("val", "test"):
        names, targets = source.held[split]
        assert len(names) == len(targets) == source.sizes[split] > 0


@pytest.mark.parametrize("kind", ["folder", "table"])
def test_an_epochs_order_depends_on_seed_and_epoch_only(kind, folder, table):
    path = folder if kind == "folder" else table
    first = epoch(open_source(path, DEFAULT_ALPHABET, seed=0), 3)
    again = epoch(open_source(path, DEFAULT_ALPHABET, seed=0), 3)  # a new process, resumed at epoch 3
    assert first == again
    assert epoch(open_source(path, DEFAULT_ALPHABET, seed=0), 4) != first


def test_bucketing_groups_names_of_similar_length(folder):
    source = FolderSource(load_dataset(folder), seed=0)

    def spread(batches):  # mean (longest - shortest) name in a batch
        return sum(max(map(len, names)) - min(map(len, names)) for names, _ in batches) / len(batches)

    assert spread(epoch(source, 1, bucket=True)) < spread(epoch(source, 1, bucket=False)) / 2


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_share_an_epoch_with_equal_step_counts(folder, world):
    source = FolderSource(load_dataset(folder), seed=0)
    whole = epoch(source, 1)
    shares = [epoch(source, 1, rank=rank, world=world) for rank in range(world)]
    assert len({len(share) for share in shares}) == 1 == len({len(shares[0]), math.ceil(len(whole) / world)})
    seen = [batch for share in shares for batch in share]
    assert all(batch in whole for batch in seen)
    assert all(batch in seen for batch in whole)  # nothing lost; the few repeats even out the ranks


def test_targets_are_label_indices_as_a_tensor(folder):
    source = FolderSource(load_dataset(folder), seed=0)
    names, targets = next(source.epoch(1, 8, True))
    assert isinstance(targets, torch.Tensor) and targets.dtype == torch.long and len(names) == len(targets)
