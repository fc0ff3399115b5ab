"""pandas DataFrames in, DataFrames out: the answer columns of `predict --csv`, typed.

classify_frame() is the one function under predict_dataframe() and the Spark and Dask engines
(charclf.spark, charclf.dask); it decides every answer cell through tables.classify_rows, as
`predict --csv` does, so all of them answer a row alike, with options checked once as
PredictOptions (charclf.predict.options). pandas is imported only here, inside
the functions (the `pandas` extra): `predict --csv` does not need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from charclf.errors import DataError
from charclf.predict.options import PredictOptions
from charclf.predict.tables import CHUNK_ROWS, Layout, Summary, answer_columns, classify_rows, find_columns

# An answer field's type -> its pandas dtype: every cell may be empty (NaN, <NA> or None).
DTYPES = {float: "float64", bool: "boolean", str: object}


@dataclass(frozen=True)
class Plan:
    """Where a frame's names are and which answer columns it gets."""

    positions: list[int]  # the classified columns' positions, in the order asked
    layout: Layout
    groups: list[list[str]]  # the answer columns' names, one list per classified column

    def columns(self) -> list[tuple[str, type]]:
        """(name, float | bool | str) of every answer column, in order."""
        kinds = self.layout.kinds()
        return [(name, kind) for group in self.groups for name, kind in zip(group, kinds)]


def plan(header: Sequence, column, clf, options: PredictOptions, all_probs: bool = False,
         where: str = "the DataFrame") -> Plan:
    """The Plan for a table with these column names; a missing column or an answer column that
    would clash is one TableUsageError naming the columns there are."""
    # A column is named by its label, whatever its type (read_csv(header=None) labels them 0, 1, ...):
    # one label, or a list or tuple of them, matched as text as the CSV header's names are.
    columns = [str(c) for c in column] if isinstance(column, (list, tuple)) else [str(column)]
    header = [str(c) for c in header]
    positions = find_columns(header, columns, where)
    layout = Layout.of(clf, options, all_probs)
    return Plan(positions, layout, answer_columns(header, [header[i] for i in positions], layout))


def name_cells(values, column: str = "name") -> list[str]:
    """A column's cells as the names to classify: strings as they are; None, NaN and <NA> are empty
    names (as an empty CSV cell is); any other value (a number, a bool, bytes, a list) is one
    DataError naming its column and row, before anything is classified."""
    import pandas as pd

    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    names = []
    for row, value, missing in zip(series.index, series.tolist(), series.isna().tolist()):
        if isinstance(value, str):
            names.append(value)
        elif missing is True:
            names.append("")
        else:
            raise DataError(f"the DataFrame's column {column!r}, row {row!r}: {type(value).__name__} "
                            f"{repr(value)[:40]} is not a name (names are strings; None or NaN for a missing one)")
    return names


def classify_frame(frame, clf, column: str | Sequence[str] = "name", options: PredictOptions = PredictOptions(),
                   all_probs: bool = False, chunk_rows: int = CHUNK_ROWS):
    """`frame` (a pandas DataFrame) with the answer columns of `predict --csv` added after its own,
    a chunk of `chunk_rows` rows classified at a time by the loaded `clf` (charclf.load's Classifier)
    with `options` (charclf.predict.options). Probabilities are float64 (NaN when empty), abstained
    is pandas' nullable boolean, the text columns hold str or None. The input is not changed; its
    index is kept."""
    import numpy as np
    import pandas as pd

    p = plan(frame.columns, column, clf, options, all_probs)
    rows = [list(cells) for cells in zip(*(name_cells(frame.iloc[:, i], str(frame.columns[i])) for i in p.positions))]
    answers, summary = [], Summary()
    for start in range(0, len(rows), chunk_rows):
        answers += classify_rows(clf, rows[start : start + chunk_rows], range(len(p.positions)), p.layout, options,
                                 summary)
    columns = list(zip(*answers)) if answers else [()] * len(p.columns())
    out = frame.copy()
    for (name, kind), values in zip(p.columns(), columns):
        if kind is bool:
            out[name] = pd.array(list(values), dtype="boolean")
        else:  # arrays, not Series: nothing to align on the frame's index, which may repeat itself
            out[name] = np.array(values, dtype=DTYPES[kind])  # float64: None becomes NaN
    return out


def predict_dataframe(frame, column: str | Sequence[str] = "name", k: int = 3, min_confidence: float | None = None,
                      all_probs: bool = False, classifier=None, chunk_rows: int = CHUNK_ROWS, **options):
    """A copy of the pandas DataFrame `frame` with the answer columns of `predict --csv` added
    (see classify_frame). `column`: one column name or several; `classifier`: a loaded model
    (default: charclf.load()); `options`: more keyword arguments for its predict()."""
    from charclf.extras import require
    from charclf.predict.loading import load

    require("pandas")
    asked = PredictOptions(k, min_confidence, **options)  # a bad option says so before a model loads
    clf = classifier or load()
    return classify_frame(frame, clf, column, asked.for_model(clf), all_probs, chunk_rows)
