"""charclf.spark on a real local[2] Spark: the answers of `predict --csv`, row for row, on 100,000
rows; the model loaded once per Python worker process; `python -m charclf.spark` under
spark-submit. Spark needs Java (Debian's openjdk-17-jre-headless; .ci/run installs it as root)."""

import csv
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import engines

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")
pytest.importorskip("pyarrow", reason="the spark extra is not installed (pip install -e '.[spark]')")
pd = pytest.importorskip("pandas")
if shutil.which("java") is None:
    if os.environ.get("CI"):
        pytest.fail("Spark needs Java, and there is none (.ci/run installs openjdk-17-jre-headless as root)",
                    pytrace=False)
    pytest.skip("Spark needs Java: apt-get install openjdk-17-jre-headless", allow_module_level=True)

SPARK_ENV = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
ENTRY = Path(__file__).resolve().parents[1] / "charclf" / "spark" / "__main__.py"


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local[2] session (Arrow batches of 5,000 rows); its workers append to a load log."""
    from pyspark.sql import SparkSession

    log = tmp_path_factory.mktemp("spark") / "loads.log"
    saved = {key: os.environ.get(key) for key in ("CHARCLF_LOAD_LOG", "OMP_NUM_THREADS", *SPARK_ENV)}
    os.environ.update(CHARCLF_LOAD_LOG=str(log), OMP_NUM_THREADS="1", **SPARK_ENV)  # the workers inherit them
    session = (SparkSession.builder.master("local[2]").appName("charclf-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000").getOrCreate())
    session.load_log = log
    try:
        yield session
    finally:
        session.stop()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def spark_frame(spark, rows, slices: int):
    frame = pd.DataFrame({"id": [i for i, _ in rows], "surname": [name for _, name in rows]})
    return spark.createDataFrame(frame, "id long, surname string").repartition(slices)


@pytest.mark.slow
def test_spark_answers_100k_rows_as_predict_csv_does_loading_once_per_worker(spark, engine_table):
    import charclf.spark

    rows, columns = engine_table["rows"], engine_table["columns"]
    df = spark_frame(spark, rows, slices=6)
    result = charclf.spark.classify(df, "surname", model=engine_table["model"], min_confidence=0.5)
    assert result.columns == ["id", "surname", *columns]
    kinds = dict(result.dtypes)
    assert kinds["probability"] == "double" and kinds["abstained"] == "boolean" and kinds["label"] == "string"
    got = engines.engine_answers(result.toPandas().to_dict("records"), columns)
    assert len(got) == len(rows) and got == engine_table["answers"]
    nulls = [str(i) for i, name in rows if name is None]
    assert nulls and all(got[i][columns.index("error")] == "empty name" for i in nulls)
    loads = Counter(line.split()[0] for line in spark.load_log.read_text().splitlines())
    workers = {pid for pid in loads if int(pid) != os.getpid()}  # the driver loads once to plan
    assert all(n == 1 for n in loads.values()), loads
    # 6 tasks of 3 to 4 Arrow batches each, on 2 slots: a load per batch or per task would show.
    assert 1 <= len(workers) < 6, loads


def test_spark_missing_column_is_one_clear_error_before_any_job(spark, engine_table):
    import charclf
    import charclf.spark

    df = spark_frame(spark, engine_table["rows"][:10], slices=1)
    with pytest.raises(charclf.CharclfError, match="no column 'last' in the Spark DataFrame; it has columns 'id', "
                                                   "'surname'"):
        charclf.spark.classify(df, "last", model=engine_table["model"])


def read_spark_csv(folder: Path) -> list[dict]:
    rows = []
    for part in sorted(folder.glob("part-*.csv")):
        with open(part, encoding="utf-8", newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


@pytest.mark.slow
def test_spark_submit_classifies_a_csv_file(engine_table, tmp_path):
    rows = engine_table["rows"][:500]
    table = engines.write_csv(tmp_path / "in.csv", rows)
    columns, expected = engines.cli_answers(table, engine_table["model"], tmp_path / "expected.csv", "-k", "2",
                                            "--all-probs")
    submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent)) or "spark-submit"
    done = subprocess.run([submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(ENTRY),
                           str(table), str(tmp_path / "out.csv"), "--column", "surname", "-k", "2", "--all-probs",
                           "--model", str(engine_table["model"])], env=engines.quiet_env(**SPARK_ENV),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    written = read_spark_csv(tmp_path / "out.csv")
    assert list(written[0]) == ["id", "surname", *columns] and len(written) == len(rows)
    # Spark writes doubles in full: as predict --csv writes them, 6 decimals.
    got = {r["id"]: [f"{float(r[c]):.6f}" if c.startswith("probability") and r[c] else r[c] for c in columns]
           for r in written}
    assert got == expected


def test_the_entry_point_says_what_is_wrong_in_one_line(spark, engine_table, tmp_path, capsys):
    from charclf.spark.__main__ import run

    table = engines.write_csv(tmp_path / "in.csv", engine_table["rows"][:20])
    with pytest.raises(SystemExit) as stopped:
        run([str(table), str(tmp_path / "out.parquet"), "--column", "last", "--model", str(engine_table["model"])])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "Error: no column 'last' in the Spark DataFrame; it has columns 'id', 'surname'\n"
    with pytest.raises(SystemExit) as stopped:
        run([str(tmp_path / "none.parquet"), str(tmp_path / "out.parquet"), "--column", "surname"])
    said = capsys.readouterr().err
    assert stopped.value.code == 1 and said.startswith("Error: ") and len(said.splitlines()) == 1, said
    assert not spark.sparkContext._jsc.sc().isStopped()  # a session it did not start is left running


@pytest.mark.slow
def test_spark_gives_each_name_the_python_apis_answer(spark):
    """One name, one answer (tests/test_one_answer.py): the executors answer every name of many
    scripts as charclf.load().predict does, in Arrow batches of any mix."""
    import charclf.spark

    from tests import one_answer

    frame = spark.createDataFrame(pd.DataFrame({"name": one_answer.NAMES})).repartition(3)
    answered = charclf.spark.classify(frame, model=str(one_answer.ONNX), all_probs=True).toPandas()
    one_answer.same(one_answer.frame_answers(answered), one_answer.reference(), one_answer.TOLERANCE, "spark")


def test_the_entry_point_checks_its_options_before_starting_spark(tmp_path):
    """A master Spark cannot reach: had Spark started first, its error would come instead."""
    done = subprocess.run([sys.executable, str(ENTRY), str(tmp_path / "in.csv"), str(tmp_path / "out.csv"),
                           "--column", "surname", "--min-confidence", "nan", "--master", "spark://nowhere.invalid:1"],
                          env=engines.quiet_env(**SPARK_ENV), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: --min-confidence must be a number from 0 to 1, got nan"


@pytest.mark.slow
def test_the_entry_point_writes_csv_cells_as_they_are_and_its_own_formula_safe(spark, onnx_model, tmp_path):
    """Spaces kept in every cell, the table's and charclf's; a family name that would be a formula
    written as `predict --csv` writes it (an apostrophe first)."""
    import charclf.spark
    from charclf.spark.__main__ import run

    source = tmp_path / "in.csv"
    source.write_text('id,surname\n1,"  Smith  "\n2,"Jean =HYPERLINK(""http://x"")"\n3,"Ann -Jones "\n',
                      encoding="utf-8")
    run([str(source), str(tmp_path / "out.csv"), "--column", "surname", "--full-name", "-k", "1",
         "--model", str(onnx_model)])
    written = {row["id"]: row for row in read_spark_csv(tmp_path / "out.csv")}
    columns, expected = engines.cli_answers(source, onnx_model, tmp_path / "expected.csv", "-k", "1",
                                            "--full-name")
    assert [written[i]["surname"] for i in "123"] == ["  Smith  ", 'Jean =HYPERLINK("http://x")', "Ann -Jones "]
    assert written["2"]["family_name"] == "'=HYPERLINK(\"http://x\")" and written["3"]["family_name"] == "'-Jones"
    got = {i: [f"{float(r[c]):.6f}" if c.startswith("probability") and r[c] else r[c] for c in columns]
           for i, r in written.items()}
    assert got == expected
    # An .onnx model records its label-set calibration: coverage needs no .pt (docs/engines.md).
    sets = charclf.spark.classify(spark.read.csv(str(source), header=True), "surname", model=str(onnx_model),
                                  coverage=0.9).toPandas()
    assert len(sets) == 3 and all(isinstance(s, str) and s for s in sets["label_set"]), sets
