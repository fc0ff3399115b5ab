"""The one inference runner (charclf.predict.runner): de-duplication, length groups, order, threads."""

import threading
import time

import numpy as np
import pytest

from charclf.data.letters import Letters
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.runner import LETTERS_PER_ROW, length_batches, run_names

LETTERS = Letters(DEFAULT_ALPHABET)
N_CLASSES = 3


class Network:
    """A stand-in network: each name's logits from its letters alone, every call recorded."""

    def __init__(self, pause: float = 0.0):
        self.calls, self.lock, self.pause = [], threading.Lock(), pause

    def __call__(self, letters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        assert letters.dtype == lengths.dtype == np.int64 and letters.ndim == 2
        assert (lengths == letters.shape[1]).all()  # one length per batch: no padding
        with self.lock:
            self.calls.append((len(letters), letters.shape[1], threading.get_ident()))
        time.sleep(self.pause)  # as a network lets go of the GIL
        weights = np.arange(1, letters.shape[1] + 1)
        first = (letters * weights).sum(1)
        return np.stack([first, letters.sum(1), lengths], axis=1).astype(np.float32)


def expected(name: str) -> list[float]:
    positions = [DEFAULT_ALPHABET.index(c) for c in name]
    return [sum((i + 1) * p for i, p in enumerate(positions)), sum(positions), len(name)]


NAMES = ["Li", "Jones", "Smith", "Li", "O'Neil", "X", "Nakamura", "Jones", "de la Cruz", "Ng", "Abe"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("batch", [1, 2, 256])
def test_every_name_gets_its_own_logits_in_input_order(workers, batch):
    network = Network()
    logits = run_names(NAMES, network, LETTERS, N_CLASSES, batch, workers)
    assert logits.dtype == np.float32 and logits.shape == (len(NAMES), N_CLASSES)
    assert logits.tolist() == [expected(name) for name in NAMES]


def test_a_repeated_name_runs_once_and_batches_hold_one_length():
    network = Network()
    run_names(NAMES * 3, network, LETTERS, N_CLASSES, 256)
    distinct = set(NAMES)
    # A lone name of its length runs as two copies; every other batch holds its names once.
    by_length = {}
    for name in distinct:
        by_length.setdefault(len(name), []).append(name)
    assert sorted((rows, length) for rows, length, _ in network.calls) == \
        sorted((max(2, len(group)), length) for length, group in by_length.items())


def test_one_and_two_workers_give_the_same_answers_and_two_share_the_work():
    names = [f"{a}{b}{c}" * n for a in "BKLMN" for b in "aeiou" for c in "lmnrs" for n in (1, 2, 3)]
    one, two = Network(), Network(pause=0.002)
    alone = run_names(names, one, LETTERS, N_CLASSES, 8, workers=1)
    held = []
    shared = run_names(names, two, LETTERS, N_CLASSES, 8, workers=2, exclusive=lambda: _Held(held))
    assert np.array_equal(alone, shared)
    assert held == ["in", "out"]  # entered once around the workers' runs
    assert len({ident for _, _, ident in two.calls}) == 2


def test_one_worker_never_holds_the_exclusive_context():
    held = []
    run_names(NAMES, Network(), LETTERS, N_CLASSES, 2, workers=1, exclusive=lambda: _Held(held))
    assert held == []


def test_no_names_no_runs():
    network = Network()
    logits = run_names([], network, LETTERS, N_CLASSES, 256, workers=2)
    assert logits.shape == (0, N_CLASSES) and network.calls == []


def test_a_failing_network_fails_the_call():
    def broken(letters, lengths):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        run_names(NAMES, broken, LETTERS, N_CLASSES, 2, workers=2)


def test_letters_lower_case_when_the_model_does_and_read_other_alphabets():
    lower = Letters(DEFAULT_ALPHABET, lowercase=True)
    assert lower.positions("JoNes").tolist() == LETTERS.positions("jones").tolist()
    letters, lengths = Letters("aбc").same_length(["aб", "cc"])
    assert letters.tolist() == [[0, 1], [2, 2]] and lengths.tolist() == [2, 2]


def test_length_batches_are_runs_of_one_length_shortest_first():
    batches = length_batches(np.array([3, 1, 3, 3, 1]), 2)
    assert [rows.tolist() for rows in batches] == [[1, 4], [0, 2], [3]]


def test_no_batch_holds_more_letters_than_its_budget():
    lengths = np.array([7] * 600 + [1000] * 300 + [20000] * 3)
    batches = length_batches(lengths, 256)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))  # every row once
    assert max(len(rows) * lengths[rows[0]] for rows in batches if len(rows) > 1) <= 256 * LETTERS_PER_ROW
    assert [len(rows) for rows in batches][:3] == [256, 256, 88]  # short names: full batches
    assert [len(rows) for rows in batches][-3:] == [1, 1, 1]  # longer than the budget: one at a time


class _Held:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("in")

    def __exit__(self, *exc):
        self.log.append("out")
