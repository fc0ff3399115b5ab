"""Tables in, tables out: `charclf predict --csv`, and the answer cells every table gets (pandas
DataFrames too: charclf.predict.frames).

A CSV/TSV table (a file, or '-' for stdin) is read as a stream of rows; the name column(s) are
classified a chunk of rows at a time; every row is written back, in input order, with all its
original cells and the answer's columns appended (see answer_columns). Memory stays flat
however many rows there are.

The first row is the header; longer rows are refused, shorter ones are kept as they are (never
padded in memory: a one-million-column header over rows of one cell costs what the file does) and
written back with empty cells up to the header's width, one row at a time. The
table is read by charclf.data.delimited (the same reader as `train --data TABLE`): the delimiter
is --delimiter, else the extension's, else sniffed; the output uses the input's. Bytes that are
not UTF-8 stop the run naming the line, unless encoding_errors="replace"; reads are bounded.

Written back, a cell that holds the delimiter, a quote, LF or CR is quoted. The cells charclf
composes (labels, family names, its column names) never begin with = + - @ TAB or CR: such a
cell is prefixed with an apostrophe (OWASP's advice against CSV injection); the table's own cells
are copied as they are, unless excel_safe asks for the same on them.
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from charclf.data.delimited import Table, TableUsageError, open_table
from charclf.errors import DataError
from charclf.predict.options import PredictOptions

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a cell starting so as a formula
CHUNK_ROWS = 32768  # rows read, classified and written together (predict --batch-size)
WRITE_CELLS = 1 << 16  # cells handed to the csv writer at once
PAD_AS_CELLS = 64  # a short row's padding up to this many empty cells is written as cells; longer, as delimiters
EMPTY = "empty name"


@dataclass
class Summary:
    rows: int = 0
    errors: int = 0  # name cells that could not be classified (empty, no letters)
    abstained: int = 0


@dataclass
class HeadedTable:
    """A table whose first row names its columns: the header, and the (line number, cells) rows
    after it, each at most as wide as the header (a missing cell is empty: cell_at)."""

    source: Table  # the open table (charclf.data.delimited): its name, delimiter, bytes read
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def delimiter(self) -> str:
        return self.source.delimiter

    def close(self) -> None:
        self.source.close()


def open_headed(source: str | Path, delimiter: str | None = None, encoding_errors: str = "strict") -> HeadedTable:
    """Open `source` ('-': stdin) as a HeadedTable (see charclf.data.delimited for how it is read);
    close it with HeadedTable.close()."""
    table = open_table(source, delimiter, encoding_errors, advice=", or pass --encoding-errors replace")
    try:
        first = next(table.records, None)
        if first is None or not first[2]:
            raise DataError(f"{table.name} has no header row: its first line must name the columns")
    except BaseException:
        table.close()
        raise
    header = first[2]
    return HeadedTable(table, header, _rows(table.records, table.name, len(header)))


def _rows(records, name: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row after the header, as they are (a short row is not
    padded). A blank line is a row of empty cells: no row is dropped."""
    for number, _, cells in records:
        if len(cells) > width:
            raise DataError(f"{name}, line {number}: {len(cells)} cells, but the header has {width} "
                            "(is --delimiter right? a cell holding the delimiter must be quoted)")
        yield number, cells


def cell_at(cells: Sequence[str], position: int) -> str:
    """A row's cell at `position`: empty where the row ends before it."""
    return cells[position] if position < len(cells) else ""


def find_columns(header: Sequence[str], wanted: Sequence[str], name: str) -> list[int]:
    """The positions of the `wanted` columns (exact name, else the one matching without case and
    outer spaces), each at most once. With none wanted, a one-column table's only column."""
    if not wanted:
        if len(header) == 1:
            return [0]
        raise TableUsageError(f"name the column of names to classify with --column; {name} has {_listed(header)}")
    positions = []
    for column in wanted:
        if column in header:
            positions.append(list(header).index(column))
            continue
        loose = [i for i, h in enumerate(header) if h.strip().lower() == column.strip().lower()]
        if len(loose) != 1:
            raise TableUsageError(f"no column {_short(column)} in {name}; it has {_listed(header)}")
        positions.append(loose[0])
    repeated = [header[i] for i in dict.fromkeys(i for i in positions if positions.count(i) > 1)]
    if repeated:
        raise TableUsageError(f"--column {_listed(repeated, 'column')} given more than once; each column is "
                              "classified once")
    return positions


def _listed(items: Sequence[str], what: str = "columns", shown: int = 8) -> str:
    """The first few items, each cut short, and how many there are in all: an error stays one short line."""
    head = ", ".join(_short(item) for item in items[:shown])
    return head if what == "column" and len(items) <= shown else \
        f"{what} {head}" + (f" ... ({len(items):,} in all)" if len(items) > shown else "")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class Layout:
    """Which answer columns a table gets: the top k, abstaining (with a minimum confidence), every
    label's probability (labels, with all_probs), the label set (with a coverage), the family
    name (with full names)."""

    k: int
    abstaining: bool = False
    labels: tuple[str, ...] | None = None
    label_set: bool = False
    family_name: bool = False

    @classmethod
    def of(cls, clf, options: PredictOptions, all_probs: bool = False) -> "Layout":
        return cls(max(1, min(options.k, len(clf.labels))), options.min_confidence is not None,
                   tuple(clf.labels) if all_probs else None, options.coverage is not None, options.full_names)

    def fields(self) -> list[str]:
        fields = ["label", "probability"]
        for rank in range(2, self.k + 1):
            fields += [f"label_{rank}", f"probability_{rank}"]
        fields += (["abstained", "best_guess", "reason"] if self.abstaining else []) + ["error"]
        fields += (["label_set"] if self.label_set else []) + (["family_name"] if self.family_name else [])
        fields += [f"probability_{label}" for label in self.labels or ()]
        return fields + ["model"]

    def kinds(self) -> list[type]:
        """Each field's type, in fields() order: float (the probabilities), bool (abstained) or str.
        Any cell may also be empty (None)."""
        return [float if f.startswith("probability") else bool if f == "abstained" else str for f in self.fields()]


def answer_columns(header: Sequence[str], columns: Sequence[str], layout: Layout) -> list[list[str]]:
    """The new columns' names, one list per classified column.

    For one column: label, probability, label_2, probability_2 ... label_k, probability_k,
    then abstained, best_guess and reason (with a minimum confidence), error, label_set (with a
    coverage: the labels joined by "|"), family_name (with full names), with all_probs
    probability_<Label> for every label, and model (the id of the model that answered).
    Prefixed with "<column>_" when several columns are classified, or when an unprefixed name
    is already a column of the table."""
    fields = layout.fields()
    existing = set(header)
    prefixed = len(columns) > 1 or bool(existing & set(fields))
    groups = [[safe_cell(f"{column}_{f}" if prefixed else f) for f in fields] for column in columns]
    clashes = sorted(existing & {name for group in groups for name in group})
    if clashes:
        raise TableUsageError(f"the table already has {_listed(clashes, 'column(s)')}, which the answer "
                              "would write; rename them first")
    return groups


def answer_values(prediction, name: str, layout: Layout) -> list[Any]:
    """One name's cells for answer_columns, typed: str, float, bool, or None for an empty cell."""
    top, k, labels = prediction.top, layout.k, layout.labels or ()
    family = [prediction.family_name.part if prediction.family_name else None] if layout.family_name else []
    if not name.strip() or not top:  # nothing to classify: every cell empty but the error
        values: list[Any] = [None] * (2 * k) + ([None] * 3 if layout.abstaining else [])
        values += [EMPTY if not name.strip() else prediction.reason] + [None] * layout.label_set + family
        return values + [None] * len(labels) + [prediction.model]
    values = [prediction.label, top[0][1]]
    for label, probability in top[1:k]:
        values += [label, probability]
    values += [None] * (2 * k - len(values))  # fewer labels than k
    if layout.abstaining:
        values += [prediction.abstained, top[0][0], prediction.reason if prediction.abstained else None]
    values.append(None)
    if layout.label_set:
        values.append("|".join(prediction.label_set or ()))
    values += family
    if labels:
        share = dict(top)
        values += [share.get(label, 0.0) for label in labels]
    return values + [prediction.model]


def classify_rows(clf, rows: list[list[str]], positions: Sequence[int], layout: Layout, options: PredictOptions,
                  summary: Summary) -> list[list[Any]]:
    """Each row's answer cells (every classified column's, in order), typed as answer_values."""
    # Every label's probability, ranked, when all are wanted.
    asked = options.keywords() | {"k": len(clf.labels) if layout.labels else layout.k}
    answers = [[] for _ in rows]
    for position in positions:
        names = [cell_at(row, position) for row in rows]
        for answer, name, p in zip(answers, names, clf.predict(names, **asked)):
            answer += answer_values(p, name, layout)
            summary.errors += not name.strip() or not p.top
            summary.abstained += bool(p.top) and p.abstained
    summary.rows += len(rows)
    return answers


def cell(value: Any) -> str:
    """A typed value as a CSV cell: empty for None, true/false, probabilities to 6 decimals, text
    never read as a formula (safe_cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"
    return safe_cell(str(value))


def safe_cell(text: str) -> str:
    """`text`, prefixed with an apostrophe when it begins with = + - @ TAB or CR (a formula to a
    spreadsheet: OWASP's advice against CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _writerows(out, plain, quoting, rows: Iterable[tuple[list[str], int, list[str]]]) -> None:
    """Write each row (its own cells, how many empty cells pad it to the header's width, its answer
    cells) with the csv writer `plain`; a row holding a lone CR with `quoting` (QUOTE_ALL): the csv
    module quotes only the line ending it writes (LF), and an unquoted CR ends a row for every
    reader. A long padding is written as the delimiters it is, never as a list of empty cells; rows
    are handed over WRITE_CELLS cells at a time at most."""
    batch, held = [], 0
    for own, pad, answers in rows:
        lone_cr = any("\r" in c for c in own) or any("\r" in c for c in answers)
        if lone_cr or pad > PAD_AS_CELLS:
            plain.writerows(batch)
            batch, held = [], 0
        if lone_cr:
            quoting.writerow(own + [""] * pad + answers)
        elif pad > PAD_AS_CELLS:
            delimiter = plain.dialect.delimiter
            out.write(_joined(own, delimiter) + delimiter * (pad + bool(own)) + _joined(answers, delimiter) + "\n")
        else:
            batch.append(own + [""] * pad + answers)
            held += len(batch[-1])
            if held >= WRITE_CELLS:
                plain.writerows(batch)
                batch, held = [], 0
    plain.writerows(batch)


def _joined(cells: list[str], delimiter: str) -> str:
    """`cells` as the csv module writes them inside a row (one empty cell is nothing, not '""')."""
    if cells == [""]:
        return ""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="").writerow(cells)
    return text.getvalue()


def predict_table(clf, table: HeadedTable, out: io.TextIOBase, columns: Sequence[str], options: PredictOptions,
                  all_probs: bool = False, chunk_rows: int = CHUNK_ROWS, progress=None,
                  excel_safe: bool = False) -> Summary:
    """Classify `table`'s `columns` a chunk at a time and write every row with its answers to `out`.
    `progress`: a tqdm-like bar updated with the bytes read (or None); `excel_safe`: the table's
    own cells made safe too (safe_cell)."""
    layout = Layout.of(clf, options, all_probs)
    positions = find_columns(table.header, columns, table.name)
    names = [table.header[i] for i in positions]
    groups = answer_columns(table.header, names, layout)
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\n")
    quoting = csv.writer(out, delimiter=table.delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    own = (lambda cells: [safe_cell(c) for c in cells]) if excel_safe else (lambda cells: cells)
    _writerows(out, writer, quoting, [(own(list(table.header)), 0, [name for group in groups for name in group])])
    summary, reported = Summary(), 0
    while True:
        chunk = [cells for _, cells in itertools.islice(table.rows, chunk_rows)]
        if not chunk:
            return summary
        answers = classify_rows(clf, chunk, positions, layout, options, summary)
        width = len(table.header)
        _writerows(out, writer, quoting, ((own(cells), width - len(cells), [cell(v) for v in answer])
                                          for cells, answer in zip(chunk, answers)))
        if progress is not None:
            progress.update(table.source.consumed[0] - reported)
            reported = table.source.consumed[0]


def write_predictions(clf, source: str | Path, out: Path | None, columns: Sequence[str],
                      options: PredictOptions = PredictOptions(), all_probs: bool = False,
                      delimiter: str | None = None, encoding_errors: str = "strict", chunk_rows: int = CHUNK_ROWS,
                      progress: bool = False, excel_safe: bool = False,
                      inputs: Sequence[str | Path | None] = ()) -> Summary:
    """`charclf predict --csv`: classify the table at `source` ('-': stdin) into `out` (None: stdout).
    `out` is checked first (charclf.files.outputs: never `source`, the model file or other `inputs`,
    never a device or a file of another kind), written beside itself and renamed into place at
    the end, so a failed run leaves an existing file as it was. `progress`: a bar on stderr, in
    bytes read; `excel_safe`: see predict_table; `options`: Classifier.predict's."""
    from charclf.files.atomic import atomic_write, ensure_writable
    from charclf.files.outputs import check_output

    if out is not None:
        check_output(out, "text", [source, getattr(clf, "path", None), *inputs])
        ensure_writable(Path(out))
    table = open_headed(source, delimiter, encoding_errors)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=table.source.size, unit="B", unit_scale=True, unit_divisor=1024, desc="predicting",
                   file=sys.stderr, leave=False)

    def write(binary) -> Summary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            return predict_table(clf, table, text, columns, options, all_probs, chunk_rows, bar, excel_safe)
        finally:
            text.flush()
            text.detach()  # the caller owns the binary stream

    try:
        if out is None:
            if getattr(sys.stdout, "buffer", None) is None:
                raise DataError("cannot write the table to stdout: it is closed")
            return write(sys.stdout.buffer)
        done: list[Summary] = []
        atomic_write(Path(out), lambda f: done.append(write(f)))
        return done[0]
    except OSError as e:  # a full disk, stdout closed or full (/dev/full)
        raise DataError(f"cannot write the table to {out or 'stdout'}: {e.strerror or e}") from None
    finally:
        table.close()
        if bar is not None:
            bar.close()
