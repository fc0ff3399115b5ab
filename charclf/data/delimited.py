"""Delimited text tables (CSV, TSV) read as a stream of records: the one reader under
`train`/`evaluate --data TABLE` (charclf.data.stream) and `predict --csv` (charclf.predict.tables).

The delimiter is the one given, else the extension's (.csv comma; .tsv, .tab tab), else sniffed
from the first lines (of comma, tab, ';' and '|', the one that splits the first line into the
most cells and every following line into as many). A UTF-8 byte order mark is dropped; quoted
cells may hold delimiters and line ends; lines may end in LF, CRLF or a lone CR. Bytes that are
not UTF-8 stop the read naming the line, unless encoding_errors="replace" (then U+FFFD).

Reads are bounded: the sniff looks at the first SNIFF_BYTES or so; a physical line of more than
MAX_LINE_BYTES (a file with no line ends is one line), or a cell of more than MAX_CELL_CHARS,
stops the read naming its line before it is held whole. Every problem is one DataError line
naming the source and the line; an impossible delimiter is a TableUsageError (exit 2).
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from charclf.errors import CharclfError, DataError

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SNIFFED = ",\t;|"  # the delimiters a sniff chooses from
SNIFF_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 << 20  # one physical line (a header of 10^6 short column names fits)
MAX_CELL_CHARS = 131072  # one cell: the csv module's field limit, named here
BAD_DELIMITERS = {'"': "a quote", "'": "a quote", "\n": "a line end", "\r": "a line end", " ": "a space"}
_BLOCK = 1 << 16


class TableUsageError(CharclfError):
    """A delimiter that cannot be, a column that is not there, or answer columns that would clash:
    fix the command (exit 2)."""

    exit_code = 2


@dataclass
class Table:
    """An open table: its delimiter and its records, read as they are asked for. Close it (or use
    it in a with block)."""

    name: str  # the path, or "stdin"
    delimiter: str
    records: Iterator[tuple[int, int, list[str]]]  # (first line, last line, cells); a blank line's cells: []
    size: int | None  # bytes, when known (a file): a progress bar's total
    consumed: list[int] = field(default_factory=lambda: [0])  # bytes read so far (a cell, updated as read)
    handle: BinaryIO | None = None  # the file to close (None for stdin)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_table(source: str | Path, delimiter: str | None = None, encoding_errors: str = "strict",
               fallback: str | None = ",", digest=None, advice: str = "") -> Table:
    """Open `source` ('-': stdin) as a Table. `fallback`: the delimiter when none is given, the
    extension names none and the sniff finds none that splits the lines (None: a DataError);
    `digest`: a hashlib object fed every byte read; `advice`: added to the UTF-8 error (what the
    caller's user can do beyond saving the file as UTF-8)."""
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
    own = None if name == "stdin" else handle
    consumed = [0]
    try:
        raw = _physical_lines(handle, consumed, name, digest)
        head = list(_until(raw, SNIFF_BYTES))  # the first lines, kept for sniffing
        if delimiter is None:
            delimiter = DELIMITERS.get(Path(name).suffix.lower()) or sniff(head) or fallback
        if delimiter is None:
            raise DataError(f"cannot tell the delimiter of {name}: name it .csv or .tsv")
    except BaseException:
        if own is not None:
            own.close()
        raise
    reader = csv.reader(_decoded(itertools.chain(head, raw), name, encoding_errors, advice), delimiter=delimiter)
    return Table(name, delimiter, _records(reader, name), size, consumed, own)


def check_delimiter(delimiter: str) -> None:
    """One character that can separate cells: not a quote, a line end or a space (TableUsageError)."""
    if len(delimiter) != 1 or delimiter in BAD_DELIMITERS:
        what = BAD_DELIMITERS.get(delimiter, f"{len(delimiter)} characters")
        raise TableUsageError(f"--delimiter {delimiter!r} is {what}; give one character that is not a quote, a "
                              "line end or a space (',', ';', '|' or 'tab')")


def sniff(head: list[bytes]) -> str | None:
    """The delimiter of the first lines: of comma, tab, ';' and '|', the one that splits the first
    line into the most cells and every following one into as many; None when none splits them."""
    text = b"".join(head).decode("utf-8", errors="replace").removeprefix("\ufeff")
    best, best_width = None, 1
    for delimiter in SNIFFED:
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


def _physical_lines(handle: BinaryIO, consumed: list[int], name: str, digest) -> Iterator[bytes]:
    """The stream's lines, each ending as it does (LF, CRLF or a lone CR, as the csv module wants
    them), read in blocks: a line longer than MAX_LINE_BYTES stops the read before it is held whole.
    `consumed` counts the bytes read; `digest` (or None) is fed them."""
    read = getattr(handle, "read1", handle.read)
    pending: list[bytes] = []  # the start of a line not ended yet
    waiting, number = 0, 0
    while block := read(_BLOCK):
        consumed[0] += len(block)
        if digest is not None:
            digest.update(block)
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


def _decoded(lines: Iterable[bytes], name: str, errors: str, advice: str) -> Iterator[str]:
    """Each line as text; the first without its byte order mark. Invalid UTF-8 stops with the line
    number (errors="strict") or becomes U+FFFD (errors="replace")."""
    for number, raw in enumerate(lines, start=1):
        codec = "utf-8-sig" if number == 1 else "utf-8"
        try:
            yield raw.decode(codec, errors=errors)
        except UnicodeDecodeError as e:
            raise DataError(f"{name}, line {number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                            f"{e.start + 1}); save it as UTF-8{advice}") from None


def _records(reader, name: str) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of every record; they differ when a quoted cell holds line ends."""
    while True:
        first = reader.line_num + 1  # where the next record starts
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{name}, line {first}: {_csv_problem(e)}{_unclosed(first, reader.line_num)}") from None
        yield first, reader.line_num, cells


def _csv_problem(error: csv.Error) -> str:
    """The csv module's error in words (without its advice about universal-newline mode)."""
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {MAX_CELL_CHARS:,} characters, the most a cell may have; refused"
    return str(error).split(" - ")[0]


def _unclosed(start: int, now: int) -> str:
    return f" (a quote opened on this line may never be closed: the row ran on to line {now})" if now > start else ""
