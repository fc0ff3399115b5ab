"""Tables in, tables out: `charclf predict --csv`, and the answer cells every table gets (pandas
DataFrames too: charclf.predict.frames).

A CSV/TSV table (a file, or '-' for stdin) is read as a stream of rows; the name column(s) are
classified a chunk of rows at a time; every row is written back, in input order, with all its
original cells and the answer's columns appended (see answer_columns). Memory stays flat
however many rows there are.

The first row is the header. The delimiter is --delimiter, else the extension's (.csv comma;
.tsv, .tab tab), else sniffed from the first lines (comma, tab, ';' or '|'); the output uses
the input's. A UTF-8 byte order mark is dropped; quoted cells may hold delimiters and newlines.
Bytes that are not UTF-8 stop the run naming the line, unless encoding_errors="replace".
Lines may end in LF, CRLF or a lone CR. Reads are bounded: a physical line of more than
MAX_LINE_BYTES, or a cell of more than MAX_CELL_CHARS, stops the run naming its line before
it is held whole.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

from charclf.errors import CharclfError, DataError

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SNIFF_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 << 20  # one physical line (a header of 10^6 short column names fits)
MAX_CELL_CHARS = 131072  # one cell: the csv module's field limit, named here
BAD_DELIMITERS = {'"': "a quote", "'": "a quote", "\n": "a line end", "\r": "a line end", " ": "a space"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a cell starting so as a formula
_BLOCK = 1 << 16
CHUNK_ROWS = 32768  # rows read, classified and written together (predict --batch-size)
EMPTY = "empty name"


class TableUsageError(CharclfError):
    """A column that is not there, or answer columns that would clash: fix the command (exit 2)."""

    exit_code = 2


@dataclass
class Summary:
    rows: int = 0
    errors: int = 0  # name cells that could not be classified (empty, no letters)
    abstained: int = 0


@dataclass
class Table:
    """An open table: its header, its delimiter, and an iterator of (line number, cells) rows."""

    name: str  # the path, or "stdin"
    delimiter: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    size: int | None  # bytes, when known (a file): the progress bar's total
    consumed: list[int] = field(default_factory=lambda: [0])  # bytes read so far (a cell, updated as read)
    handle: BinaryIO | None = None  # the file to close (None for stdin)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def open_table(source: str | Path, delimiter: str | None = None, encoding_errors: str = "strict") -> Table:
    """Open `source` ('-': stdin) as a Table; close it with Table.close()."""
    name = "stdin" if str(source) == "-" else str(source)
    if delimiter is not None:
        check_delimiter(delimiter)
    if name == "stdin" and sys.stdin is None:
        raise DataError("cannot read the table from stdin: it is closed")
    handle, size = getattr(sys.stdin, "buffer", None), None
    if name != "stdin":
        try:
            handle = open(source, "rb")
            size = Path(source).stat().st_size
        except OSError as e:
            raise DataError(f"cannot read {source}: {e.strerror or e}") from None
    consumed = [0]
    raw = _physical_lines(handle, consumed, name)
    head = list(_until(raw, SNIFF_BYTES))  # the first lines, kept for sniffing
    if delimiter is None:
        delimiter = DELIMITERS.get(Path(name).suffix.lower()) or _sniff(head)
    lines = _decoded(itertools.chain(head, raw), name, encoding_errors)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        header = None
    except csv.Error as e:
        raise DataError(f"{name}, line {reader.line_num}: {_csv_problem(e)}") from None
    if not header:
        raise DataError(f"{name} has no header row: its first line must name the columns")
    own = None if name == "stdin" else handle
    return Table(name, delimiter, header, _rows(reader, name, len(header)), size, consumed, own)


def check_delimiter(delimiter: str) -> None:
    """One character that can separate cells: not a quote, a line end or a space (TableUsageError)."""
    if len(delimiter) != 1 or delimiter in BAD_DELIMITERS:
        what = BAD_DELIMITERS.get(delimiter, f"{len(delimiter)} characters")
        raise TableUsageError(f"--delimiter {delimiter!r} is {what}; give one character that is not a quote, a "
                              "line end or a space (',', ';', '|' or 'tab')")


def _physical_lines(handle: BinaryIO, consumed: list[int], name: str) -> Iterator[bytes]:
    """The stream's lines, each ending as it does (LF, CRLF or a lone CR, as the csv module wants
    them), read in blocks: a line longer than MAX_LINE_BYTES stops the run before it is held whole.
    `consumed` counts the bytes read."""
    read = getattr(handle, "read1", handle.read)
    pending: list[bytes] = []  # the start of a line not ended yet
    waiting, number = 0, 0
    while block := read(_BLOCK):
        consumed[0] += len(block)
        if b"\n" not in block and b"\r" not in block and not (pending and pending[-1].endswith(b"\r")):
            pending.append(block)
            waiting += len(block)
        else:
            lines = b"".join([*pending, block]).splitlines(keepends=True)
            # The last piece may be a line not ended yet, or a CR whose LF is in the next block.
            last = lines.pop() if not lines[-1].endswith(b"\n") else b""
            number += len(lines)
            yield from lines
            pending, waiting = [last], len(last)
        if waiting > MAX_LINE_BYTES:
            raise DataError(f"{name}, line {number + 1} is longer than {MAX_LINE_BYTES:,} bytes, the most a line "
                            "of a table may have; refused (is it a table?)")
    if waiting:
        yield b"".join(pending)


def _until(lines: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """Lines from `lines` until about `limit` bytes have gone by (the rest stay in `lines`)."""
    total = 0
    for line in lines:
        yield line
        total += len(line)
        if total >= limit:
            return


def _sniff(head: list[bytes]) -> str:
    """The delimiter of the first lines: of comma, tab, ';' and '|', the one that splits the header
    into the most cells and every following row into as many; comma when none does (one column)."""
    text = b"".join(head).decode("utf-8", errors="replace").removeprefix("\ufeff")
    best, best_width = ",", 1
    for delimiter in ",\t;|":
        try:
            rows = [row for row in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), 50) if row]
        except csv.Error:
            continue
        if len(head) > 1 and rows and len(rows[-1]) != len(rows[0]):
            rows = rows[:-1]  # the last line read may be cut short
        width = len(rows[0]) if rows else 1
        if width > best_width and all(len(row) == width for row in rows):
            best, best_width = delimiter, width
    return best


def _decoded(lines: Iterable[bytes], name: str, errors: str) -> Iterator[str]:
    """Each line as text; the first without its byte order mark. Invalid UTF-8 stops with the line
    number (errors="strict") or becomes U+FFFD (errors="replace")."""
    for number, raw in enumerate(lines, start=1):
        codec = "utf-8-sig" if number == 1 else "utf-8"
        try:
            yield raw.decode(codec, errors=errors)
        except UnicodeDecodeError as e:
            raise DataError(f"{name}, line {number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                            f"{e.start + 1}); save it as UTF-8, or pass --encoding-errors replace") from None


def _rows(reader, name: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row after the header, short rows padded with empty cells.
    A blank line is a row of empty cells: no row is dropped."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{name}, line {reader.line_num}: {_csv_problem(e)}") from None
        if len(cells) > width:
            raise DataError(f"{name}, line {reader.line_num}: {len(cells)} cells, but the header has {width} "
                            "(is --delimiter right? a cell holding the delimiter must be quoted)")
        yield reader.line_num, cells + [""] * (width - len(cells))


def _csv_problem(error: csv.Error) -> str:
    """The csv module's error in words (without its advice about universal-newline mode)."""
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {MAX_CELL_CHARS:,} characters, the most a cell may have; refused"
    return str(error).split(" - ")[0]


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
    def of(cls, clf, k: int, min_confidence: float | None, all_probs: bool, options: dict | None) -> "Layout":
        from charclf.predict.prediction import check_options

        check_options(k, min_confidence)
        options = options or {}
        return cls(max(1, min(k, len(clf.labels))), min_confidence is not None,
                   tuple(clf.labels) if all_probs else None, options.get("coverage") is not None,
                   bool(options.get("full_names")))

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


def classify_rows(clf, rows: list[list[str]], positions: Sequence[int], layout: Layout,
                  min_confidence: float | None, summary: Summary, options: dict | None = None) -> list[list[Any]]:
    """Each row's answer cells (every classified column's, in order), typed as answer_values.
    `options`: more keyword arguments for Classifier.predict."""
    wanted = len(clf.labels) if layout.labels else layout.k  # every label's probability, ranked, when all are wanted
    answers = [[] for _ in rows]
    for position in positions:
        names = [row[position] for row in rows]
        for answer, name, p in zip(answers, names, clf.predict(names, k=wanted, min_confidence=min_confidence,
                                                               **(options or {}))):
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


def _writerows(plain, quoting, rows: Iterable[list[str]]) -> None:
    """Write `rows` with the csv writer `plain`, a row holding a lone CR with `quoting` (QUOTE_ALL):
    the csv module quotes only the line ending it writes (LF), and an unquoted CR ends a row for
    every reader."""
    batch = []
    for row in rows:
        if any("\r" in c for c in row):
            plain.writerows(batch)
            batch = []
            quoting.writerow(row)
        else:
            batch.append(row)
    plain.writerows(batch)


def predict_table(clf, table: Table, out: io.TextIOBase, columns: Sequence[str], k: int = 3,
                  min_confidence: float | None = None, all_probs: bool = False, chunk_rows: int = CHUNK_ROWS,
                  progress=None, options: dict | None = None, excel_safe: bool = False) -> Summary:
    """Classify `table`'s `columns` a chunk at a time and write every row with its answers to `out`.
    `progress`: a tqdm-like bar updated with the bytes read (or None); `options`: more keyword
    arguments for Classifier.predict; `excel_safe`: the table's own cells made safe too (safe_cell)."""
    layout = Layout.of(clf, k, min_confidence, all_probs, options)
    positions = find_columns(table.header, columns, table.name)
    names = [table.header[i] for i in positions]
    groups = answer_columns(table.header, names, layout)
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\n")
    quoting = csv.writer(out, delimiter=table.delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    own = (lambda cells: [safe_cell(c) for c in cells]) if excel_safe else (lambda cells: cells)
    _writerows(writer, quoting, [own(list(table.header)) + [name for group in groups for name in group]])
    summary, reported = Summary(), 0
    while True:
        chunk = [cells for _, cells in itertools.islice(table.rows, chunk_rows)]
        if not chunk:
            return summary
        answers = classify_rows(clf, chunk, positions, layout, min_confidence, summary, options)
        _writerows(writer, quoting, (own(cells) + [cell(v) for v in answer] for cells, answer in zip(chunk, answers)))
        if progress is not None:
            progress.update(table.consumed[0] - reported)
            reported = table.consumed[0]


def write_predictions(clf, source: str | Path, out: Path | None, columns: Sequence[str], k: int = 3,
                      min_confidence: float | None = None, all_probs: bool = False, delimiter: str | None = None,
                      encoding_errors: str = "strict", chunk_rows: int = CHUNK_ROWS, progress: bool = False,
                      excel_safe: bool = False, inputs: Sequence[str | Path | None] = (), **options) -> Summary:
    """`charclf predict --csv`: classify the table at `source` ('-': stdin) into `out` (None: stdout).
    `out` is checked first (charclf.files.outputs: never `source`, the model file or other `inputs`,
    never a device or a file of another kind), written beside itself and renamed into place at
    the end, so a failed run leaves an existing file as it was. `progress`: a bar on stderr, in
    bytes read; `excel_safe`: see predict_table; `options`: more keyword arguments for Classifier.predict."""
    from charclf.files.atomic import atomic_write, ensure_writable
    from charclf.files.outputs import check_output

    if out is not None:
        check_output(out, "text", [source, getattr(clf, "path", None), *inputs])
        ensure_writable(Path(out))
    table = open_table(source, delimiter, encoding_errors)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=table.size, unit="B", unit_scale=True, unit_divisor=1024, desc="predicting",
                   file=sys.stderr, leave=False)

    def write(binary) -> Summary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            return predict_table(clf, table, text, columns, k, min_confidence, all_probs, chunk_rows, bar, options,
                                 excel_safe)
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
