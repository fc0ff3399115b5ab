"""Arbitrary Unicode never crashes folding, encoding or predict: a prediction, or `unknown` with its reason."""

import json
import math

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charclf.cli import main
from charclf.data.tensors import encode
from charclf.names.text import DEFAULT_ALPHABET, fold
from charclf.predict.classifier import EMPTY, UNREADABLE

names = st.text(max_size=60) | st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@given(names)
def test_fold_and_encode_any_text(text):
    folded = fold(text)
    assert set(folded) <= set(DEFAULT_ALPHABET)
    assert fold(folded) == folded  # folding twice changes nothing
    if folded:
        x = encode(folded)
        assert x.shape == (len(folded), len(DEFAULT_ALPHABET)) and x.sum() == len(folded)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    import charclf

    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("names")
    for label, items in TINY.items():
        (folder / f"{label}.txt").write_text("\n".join(items))
    out = folder.parent / "m.pt"
    charclf.train(folder, out, model_options={"hidden_size": 8}, config=charclf.TrainConfig(epochs=1), progress=False)
    return charclf.load(out, device="cpu"), out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(names, min_size=1, max_size=20))
def test_predict_any_text(classifier, texts):
    clf, _ = classifier
    predictions = clf.predict(texts, k=2)
    assert [p.name for p in predictions] == texts
    for p in predictions:
        if p.abstained:
            assert p.reason == (UNREADABLE if p.name.strip() else EMPTY) and not any(c.isalpha() for c in p.as_read)
            assert not p.top
        else:
            assert len(p.top) == 2 and {label for label, _ in p.top} <= set(clf.labels)
            assert all(0 <= prob <= 1 and math.isfinite(prob) for _, prob in p.top)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names.filter(lambda t: t != "-" and not t.startswith("-")))
def test_cli_predict_any_text(classifier, text):
    _, ckpt = classifier
    result = CliRunner().invoke(main, ["predict", text, "--json", "--checkpoint", str(ckpt)])
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["name"] == text and set(row["as_read"]) <= set(DEFAULT_ALPHABET)
    assert row["abstained"] == (row["label"] == "unknown") == (row["predictions"] == [])
