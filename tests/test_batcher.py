"""Predict requests that arrive together share model calls, and each gets its own rows back."""

import asyncio
import json

import pytest

pytest.importorskip("anyio", reason="the serve extra: pip install -e '.[test,serve]'")

from charclf.files.locations import shipped_checkpoint  # noqa: E402
from charclf.predict.loading import load as load_model  # noqa: E402
from charclf.predict.rows import json_rows  # noqa: E402
from charclf.server.batcher import PredictBatcher  # noqa: E402


@pytest.fixture(scope="module")
def clf():
    return load_model(shipped_checkpoint(), device="cpu")


def assert_same_rows(rows: list[str], expected: list[str]) -> None:
    """The same answers; probabilities may differ in the last digit (other batches, other rounding)."""
    assert len(rows) == len(expected)
    for row, want in zip(map(json.loads, rows), map(json.loads, expected)):
        got_p, want_p = row.pop("predictions"), want.pop("predictions")
        assert row == want and [p["label"] for p in got_p] == [p["label"] for p in want_p]
        assert all(abs(a["probability"] - b["probability"]) < 1e-5 for a, b in zip(got_p, want_p))


def ask_together(batcher, requests):
    async def all_at_once():
        return await asyncio.gather(*(batcher.predict(names, k=k, min_confidence=mc) for names, k, mc in requests))

    return asyncio.run(all_at_once())


def test_requests_waiting_together_share_one_call_and_get_their_own_rows(clf, monkeypatch):
    calls = []
    predict = clf.predict
    monkeypatch.setattr(clf, "predict", lambda names, **options: calls.append(names) or predict(names, **options))
    requests = [([name], 3, None) for name in ["Hinton", "Satoshi", "Rossi", "Nguyen"] * 25]
    requests += [(["Jones", "Иванов"], 2, None), (["Jones"], 3, 0.99)]
    answers = ask_together(PredictBatcher(clf, workers=1), requests)
    batched = list(calls)  # the batcher's calls (the checks below call predict too)
    for (names, k, mc), rows in zip(requests, answers):
        assert_same_rows(rows, json_rows(clf, names, k=k, min_confidence=mc))  # as if asked alone
    assert json.loads(answers[-1][0])["label"] == "unknown"
    # The first request starts alone; all the others waited for it and go together, one call
    # per distinct (top_k, min_confidence).
    assert len(batched) <= 1 + 3 and sum(map(len, batched)) == 103


def test_a_batch_holds_at_most_max_names(clf, monkeypatch):
    calls = []
    predict = clf.predict
    monkeypatch.setattr(clf, "predict", lambda names, **options: calls.append(len(names)) or predict(names, **options))
    ask_together(PredictBatcher(clf, workers=1, max_names=10), [(["Smith"] * 4, 3, None)] * 10)
    assert max(calls) <= 10 and sum(calls) == 40


def test_an_error_reaches_every_request_of_its_batch(clf, monkeypatch):
    def broken(*args, **options):
        raise RuntimeError("model failed")

    monkeypatch.setattr(clf, "predict", broken)

    async def ask():
        batcher = PredictBatcher(clf, workers=1)
        return await asyncio.gather(*(batcher.predict(["Smith"]) for _ in range(3)), return_exceptions=True)

    assert all(isinstance(answer, RuntimeError) for answer in asyncio.run(ask()))


def test_a_request_right_after_another_is_answered(clf):
    """A request queued just as the last batch's drain ends must start a new one, not wait forever."""
    async def one_after_another():  # each asked in the same task as the answer before it arrives
        batcher = PredictBatcher(clf, workers=1)
        return [await batcher.predict([name]) for name in ["Smith", "Rossi"] * 5]

    async def bounded():
        return await asyncio.wait_for(one_after_another(), timeout=30)

    answers = asyncio.run(bounded())
    assert [json.loads(rows[0])["name"] for rows in answers] == ["Smith", "Rossi"] * 5
