"""One name, one answer: every door gives each name the same label and probabilities as the
Python API on the same backend (1e-6), and torch and ONNX Runtime agree (1e-5). The doors:
`predict` with names, `--file` and `--csv` (1 and 2 threads, small batches of mixed lengths),
the Python API in batches of any mix, `predict_dataframe`, the server's GET, POST and explain,
and `explain`'s last row (CLI and API); Dask and Spark in their own tests, on their clusters
(test_dask.py, test_spark.py). The names (tests/one_answer.py): a few hundred in many scripts."""

from __future__ import annotations

import csv
import json
import random

import pytest
from click.testing import CliRunner

import charclf
from charclf.cli import main

from tests import one_answer
from tests.one_answer import (
    ACROSS_BACKENDS,
    NAMES,
    ONNX,
    PT,
    ROOT,
    ROUNDED,
    TOLERANCE,
    as_answer,
    frame_answers,
    from_json,
    same,
)


def invoke(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def onnx_clf():
    return charclf.load(ONNX)


@pytest.fixture(scope="module")
def reference() -> dict:
    return one_answer.reference()


def test_the_names_cover_many_scripts():
    from charclf.names.scripts import detect_script

    assert len(NAMES) >= 300
    assert len({detect_script(name) for name in NAMES}) >= 8


def test_the_api_in_batches_of_any_mix(onnx_clf, reference):
    rng = random.Random(0)
    shuffled = rng.sample(NAMES, len(NAMES))
    got, start = {}, 0
    while start < len(shuffled):
        size = rng.choice([1, 2, 3, 7, 50])
        got.update((p.name, as_answer(p.top)) for p in onnx_clf.predict(shuffled[start:start + size], k=18))
        start += size
    same(got, reference, TOLERANCE, "API, mixed batches")


@pytest.mark.parametrize("threads", [1, 2])
def test_predict_names_file_and_csv(tmp_path, reference, threads):
    printable = [n for n in NAMES if not n.startswith("-")]
    out = invoke("predict", *printable, "--json", "-k", 18, "--checkpoint", ONNX, "--threads", threads)
    same({(row := json.loads(line))["name"]: from_json(row) for line in out.splitlines()},
         {n: reference[n] for n in printable}, TOLERANCE + ROUNDED, "predict NAMES")
    names_file = tmp_path / "names.txt"
    names_file.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    out = invoke("predict", "--file", names_file, "--json", "-k", 18, "--checkpoint", ONNX, "--threads", threads,
                 "--batch-size", 7)
    same({(row := json.loads(line))["name"]: from_json(row) for line in out.splitlines()}, reference,
         TOLERANCE + ROUNDED, "predict --file")
    table = tmp_path / "people.csv"
    with open(table, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["id", "surname"], *enumerate(NAMES)])
    out = invoke("predict", "--csv", table, "--column", "surname", "--all-probs", "--checkpoint", ONNX,
                 "--threads", threads, "--batch-size", 7)
    same({row["surname"]: csv_answer(row) for row in csv.DictReader(out.splitlines())}, reference,
         TOLERANCE + ROUNDED, "predict --csv")


def csv_answer(row: dict) -> dict[str, float] | None:
    probabilities = {key.removeprefix("probability_"): value for key, value in row.items()
                     if key.startswith("probability_") and not key[-1].isdigit()}
    return None if row["error"] else {label: float(p) for label, p in probabilities.items()}


def test_torch_backend_agrees_with_onnx(reference):
    torch_clf = charclf.load(PT, backend="torch", device="cpu")
    same({p.name: as_answer(p.top) for p in torch_clf.predict(NAMES, k=18)}, reference, ACROSS_BACKENDS, "torch")
    out = invoke("predict", *[n for n in NAMES if not n.startswith("-")], "--json", "-k", 18,
                 "--checkpoint", PT, "--backend", "torch", "--threads", 2)
    torch_cli = {(row := json.loads(line))["name"]: from_json(row) for line in out.splitlines()}
    same(torch_cli, {n: reference[n] for n in torch_cli}, ACROSS_BACKENDS + ROUNDED, "predict --backend torch")


def readable(reference: dict) -> list[str]:
    return [name for name, answer in reference.items() if answer is not None]


def explain_answer(result: dict) -> dict[str, float]:
    return {t["label"]: t["probability"] for t in result["letters"][-1]["top"]}


def test_explain_last_row_is_predicts_answer(onnx_clf, reference):
    names = readable(reference)
    got = {name: explain_answer(onnx_clf.explain(name, k=18)) for name in names}
    same(got, {n: reference[n] for n in names}, TOLERANCE + ROUNDED, "explain (API)")
    for name in ["Müller", "김민준", "محمد", "山田", "Hinton"]:
        result = json.loads(invoke("explain", name, "--json", "-k", 18, "--checkpoint", ONNX))
        expected = as_answer(onnx_clf.predict([name], k=18)[0].top)
        same({name: explain_answer(result)}, {name: expected}, TOLERANCE + ROUNDED, "explain (CLI)")
        head = invoke("explain", name, "--checkpoint", ONNX).splitlines()[0]
        top = onnx_clf.predict([name], k=1)[0].top[0]
        assert head.startswith(f"{name}: {top[0]} {top[1]:.3f}")


def test_predict_dataframe(onnx_clf, reference):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"name": NAMES})
    answered = charclf.predict_dataframe(frame, all_probs=True, classifier=onnx_clf, chunk_rows=7)
    same(frame_answers(answered), reference, TOLERANCE, "predict_dataframe")


@pytest.mark.slow
def test_server_get_post_and_explain(tmp_path, reference):
    import httpx

    from tests.serving import Server

    server = Server(tmp_path, "--checkpoint", str(ONNX))
    try:
        got = {}
        for name in NAMES:
            answer = httpx.get(f"{server.url}/api/predict", params={"name": name, "top_k": 18}, timeout=30)
            assert answer.status_code == 200, (name, answer.text)
            got[name] = from_json(answer.json())
        same(got, reference, TOLERANCE + ROUNDED, "server GET")
        posted = httpx.post(f"{server.url}/api/predict", params={"top_k": 18}, json=NAMES, timeout=60)
        assert posted.status_code == 200, posted.text
        same({row["name"]: from_json(row) for row in posted.json()}, reference, TOLERANCE + ROUNDED, "server POST")
        explained = {}
        for name in readable(reference):
            answer = httpx.get(f"{server.url}/api/explain", params={"name": name, "top_k": 18}, timeout=30)
            assert answer.status_code == 200, (name, answer.text)
            explained[name] = explain_answer(answer.json())
        same(explained, {n: reference[n] for n in explained}, TOLERANCE + ROUNDED, "server explain")
    finally:
        server.stop()


def test_explain_with_a_prior_ends_on_predicts_answer_with_it(tmp_path):
    for name in ["Hinton", "Иванов", "山田"]:
        predicted = json.loads(invoke("predict", name, "--json", "-k", 18, "--prior", "uniform", "--checkpoint", ONNX))
        result = json.loads(invoke("explain", name, "--json", "-k", 18, "--prior", "uniform", "--checkpoint", ONNX))
        same({name: explain_answer(result)}, {name: from_json(predicted)}, 2 * ROUNDED, "explain --prior")
        plain = json.loads(invoke("explain", name, "--json", "-k", 18, "--checkpoint", ONNX))
        assert explain_answer(plain) != explain_answer(result)  # the prior changed every row's answer
    result = CliRunner().invoke(main, ["explain", "Hinton", "--gates", "--prior", "uniform"])
    assert result.exit_code == 2 and "--prior goes with the answers" in result.stderr


def test_only_the_reader_reads_typed_names():
    """Outside charclf/names/, nothing calls the steps of reading a name (transliteration, the usual
    romanisations, script detection for the reading): every door goes through names.reader.read."""
    steps = ("latin_reading", "korean_reading", "arabic_reading", "japanese_reading", "transliterate(")
    package = ROOT / "charclf"
    offenders = [f"{path.relative_to(ROOT)}: {step}" for path in package.rglob("*.py")
                 if path.parent.name != "names" for step in steps if step in path.read_text(encoding="utf-8")]
    assert not offenders
