"""charclf.spark.classify: a Spark DataFrame in, the same rows out with the answer columns of
`predict --csv`, computed on the executors.

The driver reads the model file once and broadcasts its bytes; on each executor's Python worker
process the first batch loads it (charclf.predict.workers: an .onnx file runs on ONNX Runtime,
so executors need only the charclf wheel and onnxruntime) and every later batch reuses it.
mapInPandas hands each task's rows over in Arrow batches of spark.sql.execution.arrow.
maxRecordsPerBatch rows (10,000 by default); each batch is classified by the same function as
`predict --csv` and `predict_dataframe` (charclf.predict.frames.classify_frame) and goes back
at once, so an executor holds one batch at a time.
"""

from __future__ import annotations

import functools
from typing import Iterator, Sequence

from charclf.predict.frames import classify_frame, plan
from charclf.predict.options import PredictOptions
from charclf.predict.workers import ModelBytes, worker_classifier


def classify(df, column: str | Sequence[str] = "name", model=None, k: int = 3, min_confidence: float | None = None,
             all_probs: bool = False, coverage: float | None = None, prior: str | None = None,
             full_names: bool = False):
    """`df` with the answer columns of `predict --csv` after its own: label, probability, ...,
    error, model (see charclf.predict.tables.answer_columns), as Spark types: the probabilities
    doubles, abstained a boolean, the rest strings; an empty cell is null. Nulls in the name
    column are empty names, as empty CSV cells are. `column`: one column or several; `model`: a
    .onnx (or .pt) file on the driver (default: charclf's default model, its .onnx when there is
    one). A missing column, or options the model cannot honour, are one CharclfError here, before
    any job runs. Lazy, like any transformation: nothing runs until an action (a write, a count)."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    options = PredictOptions(k, min_confidence, coverage, prior, full_names)
    shipped = ModelBytes.read(model)
    clf = worker_classifier(shipped)  # on the driver: the labels and the options' check
    answers = plan(df.columns, column, clf, options.for_model(clf), all_probs, where="the Spark DataFrame")
    types = {float: DoubleType(), bool: BooleanType(), str: StringType()}
    schema = StructType(list(df.schema.fields) + [StructField(name, types[kind], True)
                                                  for name, kind in answers.columns()])
    job = functools.partial(_classify_batches, _broadcast(df.sparkSession, shipped), column, options, all_probs)
    return df.mapInPandas(job, schema)


class _Carried:
    """The model inside the task itself, where there is no SparkContext to broadcast with (Spark
    Connect): the same .value as a Broadcast, shipped with every task instead of once per executor."""

    def __init__(self, value: ModelBytes):
        self.value = value


def _broadcast(session, shipped: ModelBytes):
    try:
        context = session.sparkContext
    except Exception:  # Spark Connect sessions have none (PySparkNotImplementedError and kin)
        return _Carried(shipped)
    return context.broadcast(shipped)


def _classify_batches(carried, column, options: PredictOptions, all_probs: bool, batches: Iterator) -> Iterator:
    """On an executor: each Arrow batch (a pandas DataFrame) with its answers, one batch at a time."""
    clf = worker_classifier(carried.value)  # loaded by this process's first batch, then kept
    for batch in batches:
        yield classify_frame(batch, clf, column, options, all_probs)
