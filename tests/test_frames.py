"""classify_frame, the one pandas function under predict_dataframe and the engines: the answers of
`predict --csv` through the CLI, cell for cell, with every option; the same however it is split."""

import csv
import subprocess
import sys

import pytest

from tests import engines
from tests.test_cli import ok

pd = pytest.importorskip("pandas")

OPTIONS = ["-k", "2", "--all-probs", "--min-confidence", "0.6", "--full-name"]


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """2,000 rows, two columns of awkward names (tests/engines.py), as a CSV and a DataFrame."""
    first, last = engines.names_table(2000, seed=1), engines.names_table(2000, seed=2)
    frame = pd.DataFrame({"id": range(2000), "first": [n for _, n in first], "surname": [n for _, n in last]},
                         index=[i % 7 for i in range(2000)])  # an index that repeats itself
    path = tmp_path_factory.mktemp("frames") / "people.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        rows = [[i, a or "", b or ""] for i, (_, a), (_, b) in zip(range(2000), first, last)]
        csv.writer(f, lineterminator="\n").writerows([["id", "first", "surname"], *rows])
    return path, frame


def test_classify_frame_answers_as_predict_csv_with_every_option(people, onnx_model, tmp_path):
    import charclf
    from charclf.predict.frames import classify_frame
    from charclf.predict.options import PredictOptions

    path, frame = people
    ok("predict", "--csv", path, "--column", "first", "--column", "surname", "--checkpoint", onnx_model,
       "--out", tmp_path / "out.csv", *OPTIONS)
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
        written = list(csv.reader(f))
    columns, expected = written[0][3:], {row[0]: row[3:] for row in written[1:]}
    assert columns[:3] == ["first_label", "first_probability", "first_label_2"] and "surname_family_name" in columns
    clf = charclf.load(onnx_model)
    options = PredictOptions(k=2, min_confidence=0.6, full_names=True)
    out = classify_frame(frame, clf, ["first", "surname"], options, all_probs=True)
    assert list(out.columns) == ["id", "first", "surname", *columns]
    assert list(out.index) == list(frame.index) and list(frame.columns) == ["id", "first", "surname"]
    assert engines.engine_answers(out.to_dict("records"), columns) == expected
    assert str(out["first_probability"].dtype) == "float64" and str(out["first_abstained"].dtype) == "boolean"
    assert out["first_label"].dtype == object


def test_classify_frame_gives_the_same_answers_however_the_rows_are_split(people, onnx_model):
    import charclf
    from charclf.predict.frames import classify_frame

    _, frame = people
    clf = charclf.load(onnx_model)
    whole = classify_frame(frame, clf, "surname")
    in_pieces = pd.concat([classify_frame(frame.iloc[i : i + 37], clf, "surname", chunk_rows=5)
                           for i in range(0, len(frame), 37)])
    pd.testing.assert_frame_equal(whole, in_pieces)
    empty = classify_frame(frame.iloc[:0], clf, "surname")
    assert list(empty.columns) == list(whole.columns) and list(empty.dtypes) == list(whole.dtypes)


def test_predict_csv_needs_no_pandas(people, onnx_model):
    path, _ = people
    code = ("import sys; sys.modules['pandas'] = None\n"  # any import of pandas fails
            "from charclf.cli import main\n"
            f"main(['predict', '--csv', {str(path)!r}, '--column', 'surname', '--checkpoint', {str(onnx_model)!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=engines.quiet_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(csv.reader(done.stdout.splitlines(keepends=True)))) == 2001  # cells may hold newlines
