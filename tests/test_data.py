import pytest
import torch

from charclf.data.dataset import load_dataset, split_dataset
from charclf.data.tensors import encode, index_batch, letter_indices
from charclf.errors import DataError
from charclf.names.text import DEFAULT_ALPHABET


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def test_labels_are_sorted_stems_and_duplicates_collapse(tmp_path):
    data = write(tmp_path / "d", {
        "Zulu.txt": "Dube\nDube\nNdlovu\n",
        "Alpha.txt": "Ślusàrski\nSlusarski\n\n123\n",
        "notes.md": "ignored",
    })
    ds = load_dataset(data)
    assert ds.labels == ["Alpha", "Zulu"]
    # Both spellings fold to one name; the empty line and the digits-only line vanish.
    assert ds.pairs == [("Dube", 1), ("Ndlovu", 1), ("Slusarski", 0)]


def test_same_name_under_two_labels_is_kept_twice(tmp_path):
    ds = load_dataset(write(tmp_path / "d", {"A.txt": "Chang\nLee\n", "B.txt": "Chang\n"}))
    assert ("Chang", 0) in ds.pairs and ("Chang", 1) in ds.pairs


@pytest.mark.parametrize("files, message", [
    ({}, "no <Label>.txt files"),
    ({"Only.txt": "Smith\n"}, "only one label"),
    ({"A.txt": "Smith\n", "B.txt": "\n\n"}, "B.txt holds no names"),
    ({"A.txt": "Smith\n", "B.txt": "Jones\n\xff\xfeX\n".encode("latin-1")}, "B.txt, line 2: not valid UTF-8"),
])
def test_bad_datasets_are_clear_errors(tmp_path, files, message):
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_dataset(write(tmp_path / "d", files))


def test_split_is_disjoint_on_name_text_complete_and_deterministic(real_data):
    ds = load_dataset(real_data)
    splits = split_dataset(ds, seed=0)
    names = {split: {name for name, _ in pairs} for split, pairs in splits.items()}
    assert not names["train"] & names["val"]
    assert not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert sorted(p for pairs in splits.values() for p in pairs) == ds.pairs
    assert split_dataset(ds, seed=0) == splits
    assert split_dataset(ds, seed=1) != splits


def test_real_split_matches_the_benchmark_protocol(real_data):
    ds = load_dataset(real_data)
    assert len(ds.labels) == 18
    assert len(ds.pairs) == 17994
    assert len({name for name, _ in ds.pairs}) == 17417
    sizes = {split: len(pairs) for split, pairs in split_dataset(ds, seed=0).items()}
    assert sizes == {"train": 14394, "val": 1803, "test": 1797}


def test_too_few_names_to_split(tmp_path):
    with pytest.raises(DataError, match="split is empty"):
        split_dataset(load_dataset(write(tmp_path / "d", {"A.txt": "Smith\n", "B.txt": "Jones\n"})))


def test_encode_is_one_hot_per_letter():
    x = encode("Jones")
    assert x.shape == (5, len(DEFAULT_ALPHABET))
    assert torch.equal(x.sum(1), torch.ones(5))
    assert x[0, DEFAULT_ALPHABET.index("J")] == 1
    assert letter_indices("ab", DEFAULT_ALPHABET).tolist() == [0, 1]


def test_index_batch_keeps_each_names_letters():
    names = ["Li", "Jones", "Abe"]
    padded, lengths = index_batch(names, DEFAULT_ALPHABET)
    assert padded.shape == (3, 5) and lengths.tolist() == [2, 5, 3]
    for row, name in zip(padded, names):
        assert row[: len(name)].tolist() == letter_indices(name, DEFAULT_ALPHABET).tolist()
        assert row[len(name):].sum() == 0


def test_index_batch_with_a_non_ascii_alphabet():
    padded, lengths = index_batch(["äb", "c"], "abcä")
    assert padded.tolist() == [[3, 1], [2, 0]] and lengths.tolist() == [2, 1]
