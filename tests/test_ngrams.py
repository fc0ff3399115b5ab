import json
import subprocess
import sys

import pytest
import torch

from charclf.config import ModelConfig
from charclf.data.tensors import index_batch
from charclf.models.ngrams import NgramClassifier, NgramTable, letter_codes
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.inference import batched_logits

N_LETTERS = len(DEFAULT_ALPHABET)
# Mixed lengths, repeated lengths, one letter, spaces and punctuation.
NAMES = ["Li", "Jones", "Abe", "Nakamura", "O'Neil", "Ng", "Smith", "de la Cruz", "X", "Wojciechowski", "Ito",
         "Abel", "St. John"]


def fitted_table(names, n_buckets=4096, n_classes=3):
    torch.manual_seed(0)
    table = NgramTable(N_LETTERS, n_classes, n_buckets)
    targets = torch.arange(len(names)) % n_classes
    table.fit(*index_batch(names, DEFAULT_ALPHABET), targets, letter_codes(DEFAULT_ALPHABET), max_iter=20)
    return table


def test_ngrams_of_a_name_are_char_wb_ngrams():
    """'Abe' -> ' abe ': 5 unigrams (two boundaries), 4 bigrams, 3, 2 and 1 longer n-grams."""
    table = NgramTable(N_LETTERS, 2, 1 << 20)
    table.codes.copy_(letter_codes(DEFAULT_ALPHABET))
    rows, buckets = table.buckets(*index_batch(["Abe"], DEFAULT_ALPHABET))
    assert len(rows) == 5 + 4 + 3 + 2 + 1
    # Case does not matter; the same n-grams in another name hash to the same buckets.
    _, lower = table.buckets(*index_batch(["abe"], DEFAULT_ALPHABET))
    assert torch.equal(buckets, lower)
    rows, both = table.buckets(*index_batch(["Abe", "Ab"], DEFAULT_ALPHABET))
    assert set(both[rows == 0].tolist()) == set(buckets.tolist())


def test_ngram_buckets_do_not_depend_on_batch_padding():
    table = NgramTable(N_LETTERS, 2, 4096)
    table.codes.copy_(letter_codes(DEFAULT_ALPHABET))
    rows, together = table.buckets(*index_batch(NAMES, DEFAULT_ALPHABET))
    for i, name in enumerate(NAMES):
        _, alone = table.buckets(*index_batch([name], DEFAULT_ALPHABET))
        assert sorted(alone.tolist()) == sorted(together[rows == i].tolist())


HASH_SCRIPT = """
import sys, torch
from charclf.data.tensors import index_batch
from charclf.models.ngrams import NgramTable, letter_codes
from charclf.names.text import DEFAULT_ALPHABET
table = NgramTable(len(DEFAULT_ALPHABET), 2, 1 << 18)
table.codes.copy_(letter_codes(DEFAULT_ALPHABET))
print(table.buckets(*index_batch(sys.argv[1:], DEFAULT_ALPHABET))[1].tolist())
"""


def test_ngram_hashing_is_the_same_in_every_process():
    """Not Python's salted hash(): other processes with other hash seeds agree with this one."""
    table = NgramTable(N_LETTERS, 2, 1 << 18)
    table.codes.copy_(letter_codes(DEFAULT_ALPHABET))
    here = table.buckets(*index_batch(NAMES, DEFAULT_ALPHABET))[1].tolist()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", HASH_SCRIPT, *NAMES], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""})
        assert eval(out.stdout) == here
    assert len(set(here)) > len(here) * 0.7  # and it spreads the n-grams over the buckets


def test_fitted_ngrams_separate_the_training_names():
    names = ["Smith", "Jones", "Sato", "Suzuki", "Rossi", "Russo", "Taylor", "Tanaka", "Ricci"]
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2])
    table = NgramTable(N_LETTERS, 3, 4096)
    table.fit(*index_batch(names, DEFAULT_ALPHABET), targets, letter_codes(DEFAULT_ALPHABET))
    with torch.no_grad():
        assert torch.equal(table(*index_batch(names, DEFAULT_ALPHABET)).argmax(1), targets)
    # Features are L2-normalised TF-IDF rows.
    rows, _, values = table.features(*index_batch(names, DEFAULT_ALPHABET))
    norms = torch.zeros(len(names)).index_add_(0, rows, values * values)
    assert torch.allclose(norms, torch.ones(len(names)))


def test_a_checkpoint_keeps_only_the_seen_ngram_rows():
    table = fitted_table(NAMES, n_buckets=1 << 16)
    state = table.state_dict()
    seen = int((table.idf > 0).sum())
    assert state["weight"].shape == (seen, 3) and state["rows"].shape == (seen,)
    again = NgramTable(N_LETTERS, 3, 1 << 16)
    again.load_state_dict(state)
    assert torch.equal(again.weight, table.weight) and torch.equal(again.idf, table.idf)


def test_the_ngram_classifier_fast_path_equals_its_packed_forward():
    """batched_logits (names grouped by length: embedding_bag, sort-based norm) == the table on one batch."""
    config = ModelConfig(arch="ngram", n_letters=N_LETTERS, n_classes=3, ngram_buckets=4096)
    model = NgramClassifier(config)
    model.table.load_state_dict(fitted_table(NAMES, 4096).state_dict())
    with torch.no_grad():
        packed = model(*index_batch(NAMES, DEFAULT_ALPHABET))
    fast = batched_logits(model, NAMES, DEFAULT_ALPHABET, torch.device("cpu"), batch_size=2)
    assert torch.allclose(fast, packed, atol=1e-5)


def ok(*args):
    from click.testing import CliRunner

    from charclf.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_ngram_baseline_round_trips_through_the_cli(tiny_data, tmp_path):
    """train --model ngram writes a checkpoint of the baseline alone; predict and evaluate read it
    as any other, with the probabilities of its own forward / temperature."""
    from charclf.files.checkpoint import load_checkpoint

    ckpt = tmp_path / "ngram.pt"
    out = ok("train", "--data", tiny_data, "--model", "ngram", "--ngram-buckets", "4096", "--ngram-c", "10",
             "--no-progress", "--out", ckpt)
    assert f"saved ngram model to {ckpt}" in out and "curves" not in out
    checkpoint = load_checkpoint(ckpt)
    assert checkpoint.model_config.arch == "ngram" and checkpoint.model_config.ngram_buckets == 4096
    assert checkpoint.train_config["ngram_c"] == 10
    assert set(checkpoint.state_dict) == {"table.codes", "table.idf", "table.weight", "table.bias", "table.rows"}
    model = checkpoint.build_model()
    assert 0 < int((model.table.idf > 0).sum()) < 4096  # fitted on the training names
    names = ["Tanaka", "Rossi", "Smith", "Watanabe"]
    lines = [json.loads(line) for line in ok("predict", *names, "--json", "-k", "3", "--checkpoint", ckpt).splitlines()]
    assert [line["name"] for line in lines] == names
    with torch.no_grad():
        logits = model(*index_batch(names, DEFAULT_ALPHABET))
        expected = torch.softmax(logits / checkpoint.temperature, dim=1)
    for line, probs in zip(lines, expected):
        top = probs.topk(3)
        assert [p["label"] for p in line["predictions"]] == [checkpoint.labels[i] for i in top.indices]
        assert [p["probability"] for p in line["predictions"]] == pytest.approx(top.values.tolist(), abs=2e-6)
    assert "accuracy" in ok("evaluate", "--checkpoint", ckpt, "--data", tiny_data)


def test_the_default_model_holds_no_ngram_parameters(tiny_data, tmp_path):
    from charclf.files.checkpoint import load_checkpoint

    ckpt = tmp_path / "default.pt"
    ok("train", "--data", tiny_data, "--epochs", "1", "--no-progress", "--out", ckpt)
    keys = set(load_checkpoint(ckpt).state_dict)
    # Letter embedding, recurrent layers, the head and the spelling heads on the recurrent states.
    assert keys and all(key.split(".")[0] in ("embed", "rnn", "head", "spelling") for key in keys), keys
    assert any(key.startswith("rnn.") for key in keys) and not any("table" in key for key in keys)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_ngram_baseline_fits_and_predicts_on_cuda(tiny_data, tmp_path):
    def probabilities(*args):
        return [[p["probability"] for p in json.loads(line)["predictions"]] for line in ok(*args).splitlines()]

    ckpt = tmp_path / "cuda.pt"
    ok("train", "--data", tiny_data, "--model", "ngram", "--ngram-buckets", "4096", "--device", "cuda",
       "--no-progress", "--out", ckpt)
    names = ["Tanaka", "Rossi", "Smith"]
    on_gpu = probabilities("predict", *names, "--json", "--device", "cuda", "--checkpoint", ckpt)
    on_cpu = probabilities("predict", *names, "--json", "--device", "cpu", "--checkpoint", ckpt)
    assert on_gpu == pytest.approx(on_cpu, abs=1e-4)
