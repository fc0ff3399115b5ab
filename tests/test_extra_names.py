"""Extra training names (charclf.data.extra): the pool and the off-distribution set kept apart from
the dataset's held-out names, the mimesis lists, and `charclf train/evaluate --extra-names` and the
benchmark's ...-names systems through their command lines."""

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.data.batches import open_source
from charclf.data.dataset import load_dataset, split_dataset
from charclf.data.extra import MIMESIS_LOCALES, ExtraSpec, extra_names, listed_names
from charclf.files.checkpoint import load_checkpoint
from charclf.names.reader import listed_reading
from charclf.names.text import DEFAULT_ALPHABET

from tests.conftest import write_made_up_languages

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "1", "--hidden-size", "8", "--no-refit", "--no-progress"]
TUTORIAL_LABELS = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
                   "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def made_up(tmp_path) -> tuple[Path, Path]:
    """(a dataset of three made-up languages, a folder of more names of the same languages)."""
    data = write_made_up_languages(tmp_path / "names", per_label=60, seed=1, longest=7)
    extra = write_made_up_languages(tmp_path / "extra", per_label=80, seed=2, longest=8)
    return data, extra


def test_the_pool_never_holds_a_held_out_name_and_the_off_distribution_set_is_unseen(made_up):
    data, extra = made_up
    dataset = load_dataset(data)
    for seed in (0, 1):
        splits = split_dataset(dataset, seed=seed)
        names = extra_names(ExtraSpec(str(extra), weight=0.5, cap=0), dataset, splits, seed, DEFAULT_ALPHABET)
        held_out = {name for split in ("val", "test") for name, _ in splits[split]}
        pool, offdist = {n for n, _ in names.pool}, {n for n, _ in names.offdist}
        assert pool and offdist and not pool & held_out and not pool & offdist
        assert not offdist & {name for name, _ in dataset.pairs}  # names from elsewhere only
    # The off-distribution set is the same for every split seed; each epoch draws weight x the pool afresh.
    again = extra_names(ExtraSpec(str(extra), weight=0.5, cap=0), dataset, split_dataset(dataset, seed=0), 0,
                        DEFAULT_ALPHABET)
    assert again.offdist == names.offdist
    assert len(again.drawn(1, 0)) == again.per_epoch == round(0.5 * len(again.pool))
    assert again.drawn(1, 0) == again.drawn(1, 0) != again.drawn(2, 0)
    twice = extra_names(ExtraSpec(str(extra), weight=2, cap=0), dataset, split_dataset(dataset, seed=0), 0,
                        DEFAULT_ALPHABET)
    assert Counter(twice.drawn(1, 0)) == Counter(twice.pool * 2)


def test_cap_and_ratio_bound_each_label_and_a_name_of_two_labels_is_dropped(made_up, tmp_path):
    data, extra = made_up
    (extra / "Aish.txt").write_text((extra / "Aish.txt").read_text() + "Bothways\n")
    (extra / "Bork.txt").write_text((extra / "Bork.txt").read_text() + "Bothways\n")
    dataset = load_dataset(data)
    splits = split_dataset(dataset, seed=0)
    assert all("Bothways" not in names for names in listed_names(str(extra), dataset.labels, DEFAULT_ALPHABET).values())
    capped = extra_names(ExtraSpec(str(extra), cap=5), dataset, splits, 0, DEFAULT_ALPHABET)
    assert max(Counter(label for _, label in capped.pool).values()) == 5
    train = Counter(label for _, label in splits["train"])
    ratio = extra_names(ExtraSpec(str(extra), cap=0, ratio=0.1), dataset, splits, 0, DEFAULT_ALPHABET)
    assert all(n <= round(0.1 * train[label]) for label, n in Counter(label for _, label in ratio.pool).items())


def test_a_batch_source_with_extra_names_trains_on_them_and_holds_the_off_distribution_set(made_up):
    data, extra = made_up
    plain = open_source(data, DEFAULT_ALPHABET, 0)
    mixed = open_source(data, DEFAULT_ALPHABET, 0, extra=ExtraSpec(str(extra), weight=0.5, cap=0))
    assert mixed.held["val"] == plain.held["val"] and mixed.held["test"] == plain.held["test"]
    assert mixed.sizes["train"] == plain.sizes["train"] + mixed.extra.per_epoch
    names = [name for batch, _ in mixed.epoch(1, 16, bucket=True) for name in batch]
    assert len(names) == mixed.sizes["train"] and {n for n, _ in mixed.extra.drawn(1, 0)} <= set(names)
    assert not set(names) & set(mixed.held["offdist"][0])
    assert mixed.fingerprint.startswith(plain.fingerprint + "+")


def test_mimesis_lists_give_charclfs_labels_read_as_training_reads_them():
    pytest.importorskip("mimesis")
    assert set(MIMESIS_LOCALES) <= set(TUTORIAL_LABELS)
    listed = listed_names("mimesis", TUTORIAL_LABELS, DEFAULT_ALPHABET)
    assert {TUTORIAL_LABELS[i] for i, names in listed.items() if names} == set(MIMESIS_LOCALES)
    russian = listed[TUTORIAL_LABELS.index("Russian")]
    assert "Abakumov" in russian and all(name.isascii() for names in listed.values() for name in names)
    assert listed_reading("赵", "Chinese") == "Zhao"
    if importlib.util.find_spec("pykakasi"):  # a kanji family name listed as Japanese is read in Japanese
        assert listed_reading("逢坂", "Japanese") == "Hosaka"


@pytest.mark.slow
def test_train_and_evaluate_report_the_off_distribution_set(made_up, tmp_path):
    data, extra = made_up
    model = tmp_path / "m.pt"
    done = run("train", "--data", data, "--extra-names", extra, "--extra-weight", "0.5", "--extra-cap", "20",
               *FAST, "--out", model)
    assert done.exit_code == 0, done.output
    assert "off-distribution: accuracy" in done.output
    history = json.loads(model.with_suffix(".history.json").read_text())
    assert all(0 <= row["offdist_accuracy"] <= 1 for row in history)  # each epoch, beside validation
    checkpoint = load_checkpoint(model)
    assert checkpoint.train_config["extra_names"] == str(extra) and checkpoint.train_config["extra_cap"] == 20
    offdist = checkpoint.metrics["offdist"]
    assert offdist["n"] > 0 and 0 <= offdist["accuracy"] <= 1
    shown = run("evaluate", "--checkpoint", model, "--data", data, "--json")
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.stdout)
    assert result["offdist"]["accuracy"] == pytest.approx(offdist["accuracy"]) and result["same_data_as_training"]
    card = run("info", "--checkpoint", model)
    assert f"extra names: {extra} (weight 0.5, at most 20 per label); off-distribution accuracy" in card.output
    plain = tmp_path / "plain.pt"
    assert run("train", "--data", data, *FAST, "--out", plain).exit_code == 0
    assert "off-distribution" not in run("evaluate", "--checkpoint", plain, "--data", data).output
    asked = run("evaluate", "--checkpoint", plain, "--data", data, "--extra-names", extra)
    assert asked.exit_code == 0 and f"names of {extra} never trained on" in asked.output
    ngram = run("train", "--model", "ngram", "--data", data, "--extra-names", extra, "--no-progress",
                "--out", tmp_path / "ngram.pt")
    assert ngram.exit_code == 0 and "off-distribution: accuracy" in ngram.output, ngram.output


@pytest.mark.parametrize("args, message", [
    (["--extra-names", "nowhere"], "neither 'mimesis' nor a folder of <Label>.txt files"),
    (["--extra-names", "{unknown}"], "has label(s) the dataset lacks: Dutch"),
    (["--extra-names", "{extra}", "--extra-weight", "17"], "17.0 is not in the range 0<=x<=16"),
    (["--preset", "best", "--epochs", "3", "--extra-names", "{extra}"],
     "itself: drop --epochs (only the --extra-* options go with --preset best)"),
])
def test_bad_extra_names_are_one_line_errors(made_up, tmp_path, args, message):
    data, extra = made_up
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "Dutch.txt").write_text("Jansen\n")
    args = [a.format(extra=extra, unknown=unknown) for a in args]
    done = run("train", "--data", data, *args, *FAST, "--out", tmp_path / "m.pt")
    assert done.exit_code in (1, 2) and message in done.output and "Traceback" not in done.output
    assert not (tmp_path / "m.pt").exists()


def test_extra_names_the_dataset_already_holds_train_and_score_nothing_more(made_up, tmp_path):
    data, _ = made_up
    model = tmp_path / "m.pt"
    done = run("train", "--data", data, "--extra-names", data, *FAST, "--out", model)
    assert done.exit_code == 0 and "off-distribution" not in done.output, done.output
    assert "offdist" not in load_checkpoint(model).metrics


def test_a_csv_dataset_takes_no_extra_names(made_up, tmp_path):
    _, extra = made_up
    table = tmp_path / "names.csv"
    table.write_text("name,label\n" + "".join(f"N{'a' * i},Aish\nM{'b' * i},Bork\n" for i in range(1, 30)))
    done = run("train", "--data", table, "--extra-names", extra, *FAST, "--out", tmp_path / "m.pt")
    assert done.exit_code == 1 and "extra names mix into a folder of <Label>.txt files" in done.output


@pytest.mark.slow
def test_the_benchmark_scores_every_system_on_the_off_distribution_set(made_up, tmp_path):
    pytest.importorskip("sklearn")
    data, extra = made_up
    out = tmp_path / "bench.md"
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "accuracy", "--quick", "--data", str(data),
               "--only", "logreg,logreg-names,majority", "--extra-names", str(extra), "--jobs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.with_suffix(".json").read_text())["results"]["0"]
    assert all(0 <= results[system]["offdist_accuracy"] <= 1 for system in ("logreg", "logreg-names", "majority"))
    assert results["logreg-names"]["details"]["fitted_pairs"] > results["logreg"]["details"]["fitted_pairs"]
    report = out.read_text()
    assert "off-distribution accuracy" in report and "### With the extra names" in report
    refused = subprocess.run(command[:-6] + ["--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2 and "give --extra-names" in refused.stderr


@pytest.mark.slow
def test_the_refit_trains_on_the_same_extra_names(made_up, tmp_path):
    _, extra = made_up
    data = write_made_up_languages(tmp_path / "more", per_label=150, seed=1, longest=10)  # enough to refit
    model = tmp_path / "m.pt"
    done = run("train", "--data", data, "--extra-names", extra, "--epochs", "1", "--hidden-size", "8", "--no-progress",
               "--out", model)
    assert done.exit_code == 0 and "refit failed" not in done.output, done.output
    checkpoint = load_checkpoint(model)
    sizes = checkpoint.train_config["split_sizes"]  # train: the dataset's training names + the extra names drawn
    assert checkpoint.metrics["refit"]["pairs"] == sizes["train"] + sizes["val"]
    assert sizes["train"] > len(split_dataset(load_dataset(data), seed=0)["train"])
