"""CSV/TSV datasets read as a stream: layout, hashed split, bounded samples, epochs, bad rows."""

import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.data import stream
from charclf.data.stream import detect_layout, scan, split_of
from charclf.errors import DataError
from charclf.files.checkpoint import load_checkpoint
from charclf.names.text import DEFAULT_ALPHABET

from tests.conftest import wait_for_saved_epoch

FAST = ["--epochs", "1", "--hidden-size", "8", "--embedding-dim", "8", "--no-progress"]


def made_up_rows(n_per_label=150, seed=0):
    rng = random.Random(seed)
    rows = []
    for label, letters in {"Aish": "aeiou", "Bork": "bkrtz", "Clem": "lmnsy"}.items():
        rows += [("".join(rng.choice(letters + "aeh") for _ in range(rng.randint(3, 12))).title(), label)
                 for _ in range(n_per_label)]
    rng.shuffle(rows)
    return rows


def write_rows(path, rows, delimiter=",", header="name,label"):
    lines = ([header.replace(",", delimiter)] if header else []) + [f"{n}{delimiter}{label}" for n, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def names_csv(tmp_path):
    return write_rows(tmp_path / "names.csv", made_up_rows())


def test_train_evaluate_predict_on_a_csv(names_csv, tmp_path):
    ckpt = tmp_path / "m.pt"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--data", str(names_csv), *FAST, "--out", str(ckpt)])
    assert trained.exit_code == 0, trained.output
    ds = scan(names_csv, DEFAULT_ALPHABET, seed=0)
    sizes = {s: ds.size(s) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 450
    assert f"{sizes['train']} train / {sizes['val']} val / {sizes['test']} test pairs" in trained.stderr
    assert "rows per label: Aish 150, Bork 150, Clem 150" in trained.stderr
    ck = load_checkpoint(ckpt)
    assert ck.labels == ["Aish", "Bork", "Clem"] and ck.train_config["data_dir"] == str(names_csv.resolve())
    assert ck.metrics["test"]["n"] == sizes["test"]
    report = json.loads(runner.invoke(main, ["evaluate", "--checkpoint", str(ckpt), "--data", str(names_csv),
                                             "--json", "--split", "val"]).stdout)
    assert report["n"] == report["split_rows"] == sizes["val"] and report["same_data_as_training"]
    predicted = runner.invoke(main, ["predict", "Bokrat", "--checkpoint", str(ckpt)])
    assert predicted.exit_code == 0 and predicted.stdout.startswith("Bokrat")
    # Without --data, evaluate finds the CSV the model was trained on.
    assert "accuracy" in runner.invoke(main, ["evaluate", "--checkpoint", str(ckpt)], env={"CHARCLF_DATA": ""}).stdout


def test_the_split_hashes_names_so_no_name_is_in_two_splits():
    names = [f"Name{i}" for i in range(5000)]
    splits = Counter(split_of(name, seed=0) for name in names)
    assert abs(splits["train"] / 5000 - 0.8) < 0.03 and abs(splits["val"] / 5000 - 0.1) < 0.02
    assert [split_of(n, 0) for n in names] == [split_of(n, 0) for n in names]  # deterministic
    assert [split_of(n, 0) for n in names] != [split_of(n, 1) for n in names]  # the seed matters


def test_repeated_names_stay_in_one_split(tmp_path):
    rows = made_up_rows() + [("Smith", "Aish"), ("Smith", "Bork"), ("Smith", "Clem")]
    ds = scan(write_rows(tmp_path / "d.csv", rows), DEFAULT_ALPHABET, seed=0, held=("train", "val", "test"))
    where = {split for split, pairs in ds.held.items() for name, _ in pairs if name == "Smith"}
    assert len(where) == 1
    names = {split: {name for name, _ in pairs} for split, pairs in ds.held.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]


@pytest.mark.parametrize("filename, delimiter, header", [
    ("d.tsv", "\t", None),
    ("d.csv", ",", "NAME,Label"),
    ("d.txt", ";", None),  # sniffed
    ("d.data", "|", "name|label"),  # sniffed, with a header
])
def test_delimiters_and_headers(tmp_path, filename, delimiter, header):
    path = write_rows(tmp_path / filename, made_up_rows(), delimiter, header)
    layout = detect_layout(path)
    assert layout.delimiter == delimiter and layout.header == bool(header)
    ds = scan(path, DEFAULT_ALPHABET, seed=0)
    assert ds.labels == ["Aish", "Bork", "Clem"] and sum(ds.size(s) for s in ("train", "val", "test")) == 450


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"{n},{label}\n" for n, label in made_up_rows())
    path.write_bytes(b"\xef\xbb\xbf" + "name,label\n".encode() + rows.encode())
    assert detect_layout(path).header and scan(path, DEFAULT_ALPHABET, seed=0).labels == ["Aish", "Bork", "Clem"]


def test_a_label_name_header_swaps_the_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("label,name\n" + "".join(f"{label},{n}\n" for n, label in made_up_rows()))
    assert scan(path, DEFAULT_ALPHABET, seed=0).labels == ["Aish", "Bork", "Clem"]


def test_held_out_samples_are_bounded_and_evaluate_says_so(names_csv, tmp_path, monkeypatch):
    ds = scan(names_csv, DEFAULT_ALPHABET, seed=0, held_max=10)
    assert all(len(pairs) == 10 for pairs in ds.held.values()) and ds.size("val") > 10
    assert scan(names_csv, DEFAULT_ALPHABET, seed=0, held_max=10).held == ds.held  # the same sample again
    monkeypatch.setattr(stream, "HELD_MAX", 10)  # as if the file were huge
    ckpt = tmp_path / "m.pt"
    trained = CliRunner().invoke(main, ["train", "--data", str(names_csv), *FAST, "--out", str(ckpt)])
    assert trained.exit_code == 0, trained.output
    assert f"val: scored on a random sample of 10 of its {ds.size('val')} rows" in trained.stderr
    assert load_checkpoint(ckpt).metrics["test"]["n"] == 10
    evaluated = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(ckpt), "--data", str(names_csv)])
    assert f"(10 names, a random sample of its {ds.size('test')})" in evaluated.stdout


def test_epochs_read_every_train_row_once_per_rank_set(names_csv, monkeypatch):
    monkeypatch.setattr(stream, "BUFFER", 50)  # several buffers from a small file
    ds = scan(names_csv, DEFAULT_ALPHABET, seed=0)
    train_rows = ds.size("train")
    one = list(ds.train_batches(1, batch_size=16, bucket=True))
    assert len(one) == ds.n_batches(16)
    assert sum(len(b) for b in one) == train_rows

    def spread(batches: list) -> float:
        return sum(max(map(len, b)) - min(map(len, b)) for b in batches) / len(batches)

    def names_only(batches) -> list:
        return [[name for name, _ in b] for b in batches]

    assert spread(names_only(one)) < spread(names_only(ds.train_batches(1, 16, bucket=False))) / 2
    assert list(ds.train_batches(1, 16, True)) == one and list(ds.train_batches(2, 16, True)) != one
    for world in (2, 3):
        shares = [list(ds.train_batches(1, 16, True, rank, world)) for rank in range(world)]
        assert len({len(s) for s in shares}) == 1  # the same number of steps on every rank
        seen = Counter(tuple(b) for s in shares for b in s)
        assert set(seen) == {tuple(b) for b in one}  # together, the whole epoch
        assert sum(seen.values()) - len(one) < world  # only the padding repeats


def test_a_file_changed_during_training_is_an_error(names_csv):
    ds = scan(names_csv, DEFAULT_ALPHABET, seed=0)
    with names_csv.open("a") as f:
        f.writelines(f"{n},{label}\n" for n, label in made_up_rows(seed=5))
    with pytest.raises(DataError, match="changed during training"):
        list(ds.train_batches(1, 16, True))


def test_names_with_no_letters_are_skipped_and_counted(tmp_path):
    path = write_rows(tmp_path / "d.csv", made_up_rows() + [("12345", "Aish"), ("😀 ---", "Bork")])
    result = CliRunner().invoke(main, ["train", "--data", str(path), *FAST, "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 0, result.output
    assert "warning: 2 row(s) of" in result.stderr and "no letters left after folding: skipped" in result.stderr


@pytest.mark.parametrize("content, message", [
    (b"name,label\nSmith,English\nJones\nRossi,Italian\n", "line 3: 1 column(s), expected 2 (name and label)"),
    (b"Smith,English\nJones,English,x\n", "line 2: 3 column(s), expected 2"),
    (b"Smith,English\nJones, \n", "line 2: the label is empty"),
    (b"Smith,English\nRossi,Italian\nJ\xffnes,English\n", "line 3: not valid UTF-8 (byte 0xff at column 2)"),
    (b"name,label\nSmith,English\nJones,English\n", "has 1 label(s) (English)"),
    (b"name,label\n", "has 0 label(s) (no rows)"),
    (b"Smith,English\nRossi,Italian\n", "split of"),
    (b"name,label\nSmith,English\n\"Rossi,Italian\nSato,Japanese\nJones,English\n",
     "line 3: a quote opened on this line is never closed (the row ran on to line 5)"),
    (b"Smith,English\n" + b"x" * 1001 + b",English\n", "line 2: the name is longer than 1000 characters"),
])
def test_bad_csv_rows_are_one_line_errors_with_the_line_number(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(main, ["train", "--data", str(path), *FAST, "--out", str(out)])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {path}") or line.startswith("Error: the"), line
    assert message in line and "Traceback" not in result.output
    assert not out.exists()


def test_the_folder_reader_and_its_split_are_untouched(tiny_data):
    from charclf.data.dataset import load_dataset

    assert stream.open_dataset(tiny_data, DEFAULT_ALPHABET, seed=0) == load_dataset(tiny_data)


def test_a_killed_csv_run_resumes_to_the_same_weights(tmp_path):
    """Epoch order comes from (seed, epoch), so a resumed stream run ends as an uninterrupted one."""
    import signal
    import subprocess
    import sys

    import torch

    path = write_rows(tmp_path / "d.csv", made_up_rows(n_per_label=1500))
    args = [sys.executable, "-m", "charclf", "train", "--data", str(path), "--epochs", "6", "--hidden-size", "16",
            "--batch-size", "32", "--no-progress"]
    straight, killed = tmp_path / "straight.pt", tmp_path / "killed.pt"
    assert subprocess.run([*args, "--out", str(straight)], capture_output=True, timeout=300).returncode == 0
    process = subprocess.Popen([*args, "--out", str(killed)], stderr=subprocess.PIPE)
    wait_for_saved_epoch(process, killed, 2, 120)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run([*args, "--out", str(killed), "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "resuming at epoch" in resumed.stderr, resumed.stderr
    a, b = load_checkpoint(straight).state_dict, load_checkpoint(killed).state_dict
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_an_epoch_streams_the_file_instead_of_loading_it(names_csv, monkeypatch):
    monkeypatch.setattr(stream, "BUFFER", 50)
    ds = scan(names_csv, DEFAULT_ALPHABET, seed=0)
    rows_read = []
    read_rows = stream.read_rows

    def counting(*args, **kwargs):
        for row in read_rows(*args, **kwargs):
            rows_read.append(row)
            yield row

    monkeypatch.setattr(stream, "read_rows", counting)
    next(ds.train_batches(1, batch_size=16, bucket=True))
    # The first batch came as soon as the first buffer of 50 train names was full (a few val and
    # test rows read on the way), not after reading all 450 rows.
    assert 50 <= len(rows_read) < 100


@pytest.mark.parametrize("content, message", [
    (b"Smith,English" * ((17 << 20) // 13 + 1), "line 1 is longer than 16,777,216 bytes, the most a line of a table"),
    (b"name,label\n" + b"x" * 200_000 + b",English\n", "line 2: a cell is longer than 131,072 characters"),
    (b"name,label\n\"" + b"Jones,English\n" * 20_000, "line 2: a cell is longer than 131,072 characters"),
])
def test_reads_are_bounded_as_predict_csv_bounds_them(tmp_path, content, message):
    """No line ends (one line of 17 MB) or a huge cell: one line naming the line, never a MemoryError,
    from train and predict --csv alike (both read through charclf.data.delimited)."""
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    trained = CliRunner().invoke(main, ["train", "--data", str(path), *FAST, "--out", str(tmp_path / "m.pt")])
    predicted = CliRunner().invoke(main, ["predict", "--csv", str(path), "--column", "name"])
    for result in (trained, predicted):
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"Error: {path}") and message in line, line


def test_train_and_predict_csv_word_a_bad_byte_alike(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"name,label\nSmith,English\nJ\xffnes,English\n")
    trained = CliRunner().invoke(main, ["train", "--data", str(path), *FAST, "--out", str(tmp_path / "m.pt")])
    predicted = CliRunner().invoke(main, ["predict", "--csv", str(path), "--column", "name"])
    shared = f"Error: {path}, line 3: not valid UTF-8 (byte 0xff at column 2); save it as UTF-8"
    assert trained.stderr.strip() == shared  # train has no --encoding-errors to suggest
    assert predicted.stderr.strip() == shared + ", or pass --encoding-errors replace"


def test_a_sniffed_file_with_no_delimiter_that_splits_it_is_one_line(tmp_path):
    path = write_rows(tmp_path / "d.txt", made_up_rows(), " ", None)
    result = CliRunner().invoke(main, ["train", "--data", str(path), *FAST, "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: cannot tell the delimiter of {path}: name " \
                                                              "it .csv or .tsv"
