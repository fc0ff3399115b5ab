"""charclf.dask.classify: a Dask DataFrame in, the same rows out with the answer columns of
`predict --csv`, computed partition by partition on the workers.

The client reads the model file once; its bytes become one task of the graph, which each worker
fetches once, whatever the number of partitions. A worker process loads the model on its first
partition (charclf.predict.workers: an .onnx file runs on ONNX Runtime, no torch) and keeps it
for every later one, shared by its threads. Each partition is classified by the same function
as `predict --csv` and `predict_dataframe` (charclf.predict.frames.classify_frame).
"""

from __future__ import annotations

from typing import Sequence

from charclf.predict.frames import classify_frame
from charclf.predict.options import PredictOptions
from charclf.predict.workers import ModelBytes, worker_classifier


def classify(ddf, column: str | Sequence[str] = "name", model=None, k: int = 3, min_confidence: float | None = None,
             all_probs: bool = False, coverage: float | None = None, prior: str | None = None,
             full_names: bool = False):
    """`ddf` with the answer columns of `predict --csv` after its own (probabilities float64,
    abstained pandas' nullable boolean, the rest text or None; see charclf.predict.frames).
    Missing values in the name column are empty names. `column`: one column or several;
    `model`: a .onnx (or .pt) file on the client (default: charclf's default model, its .onnx when
    there is one). A missing column, or options the model cannot honour, are one CharclfError
    here. Lazy: nothing runs until .compute(), .to_parquet() and the like, on the scheduler in
    use (a distributed.Client's, else Dask's default)."""
    import dask

    options = PredictOptions(k, min_confidence, coverage, prior, full_names)
    shipped = ModelBytes.read(model)
    clf = worker_classifier(shipped)  # on the client: the labels, the options' check, the meta
    meta = classify_frame(ddf._meta, clf, column, options.for_model(clf), all_probs)  # 0 rows, typed
    carried = dask.delayed(shipped, pure=True)  # one task: sent to each worker once
    return ddf.map_partitions(_classify_partition, carried, column, options, all_probs, meta=meta)


def _classify_partition(part, shipped: ModelBytes, column, options: PredictOptions, all_probs: bool):
    """On a worker: one partition (a pandas DataFrame) with its answers."""
    clf = worker_classifier(shipped)  # loaded by this process's first partition, then kept
    return classify_frame(part, clf, column, options, all_probs)
