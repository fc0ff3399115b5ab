"""charclf.dask on a real LocalCluster (2 worker processes, 1 thread each): the answers of
`predict --csv`, row for row, on 100,000 rows; the model loaded once per worker process."""

import os
from collections import Counter
from pathlib import Path

import pytest

from tests import engines

pytest.importorskip("dask.dataframe", reason="the dask extra is not installed (pip install -e '.[dask]')")
pytest.importorskip("distributed", reason="the dask extra is not installed (pip install -e '.[dask]')")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A distributed Client on 2 single-thread worker processes, each appending to a load log."""
    from distributed import Client, LocalCluster

    log = tmp_path_factory.mktemp("dask") / "loads.log"
    saved = {key: os.environ.get(key) for key in ("CHARCLF_LOAD_LOG", "OMP_NUM_THREADS")}
    os.environ.update(CHARCLF_LOAD_LOG=str(log), OMP_NUM_THREADS="1")  # the workers inherit them
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.load_log = log
            yield client
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def frame(rows):
    return pd.DataFrame({"id": [i for i, _ in rows], "surname": [name for _, name in rows]})


@pytest.mark.slow
def test_dask_answers_100k_rows_as_predict_csv_does_loading_once_per_worker(client, engine_table):
    import dask.dataframe as dd

    import charclf.dask

    rows = engine_table["rows"]
    ddf = dd.from_pandas(frame(rows), npartitions=10)
    result = charclf.dask.classify(ddf, "surname", model=engine_table["model"], min_confidence=0.5)
    assert list(result.columns) == ["id", "surname", *engine_table["columns"]]  # the meta, before computing
    out = result.compute()
    assert list(out.columns) == list(result.columns) and len(out) == len(rows)
    got = engines.engine_answers(out.to_dict("records"), engine_table["columns"])
    assert got == engine_table["answers"]
    nulls = [str(i) for i, name in rows if name is None]
    assert nulls and all(got[i][engine_table["columns"].index("error")] == "empty name" for i in nulls)
    loads = Counter(line.split()[0] for line in client.load_log.read_text().splitlines())
    workers = {pid for pid in loads if int(pid) != os.getpid()}  # this process loads once to plan
    assert all(n == 1 for n in loads.values()), loads
    assert 1 <= len(workers) <= 2 < ddf.npartitions, loads


def test_dask_missing_column_is_one_clear_error_before_anything_runs(engine_table):
    import dask.dataframe as dd

    import charclf
    import charclf.dask

    ddf = dd.from_pandas(frame(engine_table["rows"][:100]), npartitions=2)
    with pytest.raises(charclf.CharclfError, match="no column 'last' in the DataFrame; it has columns 'id', 'surname'"):
        charclf.dask.classify(ddf, "last", model=engine_table["model"])


def test_charclf_dask_does_not_shadow_the_real_dask():
    import dask
    import dask.dataframe

    import charclf.dask

    assert charclf.dask is not dask and "charclf" not in Path(dask.__file__).parts[-3:]
    assert dask.dataframe.from_pandas(pd.DataFrame({"a": [1]}), npartitions=1).compute()["a"].tolist() == [1]


@pytest.mark.slow
def test_dask_gives_each_name_the_python_apis_answer(client):
    """One name, one answer (tests/test_one_answer.py): the worker processes answer every name of
    many scripts as charclf.load().predict does, partition by partition."""
    import dask.dataframe as dd

    import charclf.dask

    from tests import one_answer

    frame = dd.from_pandas(pd.DataFrame({"name": one_answer.NAMES}), npartitions=4)
    answered = charclf.dask.classify(frame, model=one_answer.ONNX, all_probs=True).compute()
    one_answer.same(one_answer.frame_answers(answered), one_answer.reference(), one_answer.TOLERANCE, "dask")
