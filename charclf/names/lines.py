"""Names read one per line from a file or stdin, streaming, with every bad line reported by number
and the others still read (no torch here). A line may hold at most text.MAX_NAME_CHARS characters:
a longer one is skipped without ever being held whole in memory."""

from __future__ import annotations

from typing import BinaryIO, Iterator

from charclf.names.text import MAX_NAME_CHARS

# UTF-8 takes at most 4 bytes a character; +2 for a line ending (\r\n).
_MAX_LINE_BYTES = 4 * MAX_NAME_CHARS + 2
_SKIP_CHUNK = 1 << 16


TOO_LONG = f"longer than {MAX_NAME_CHARS} characters, the most a name may have"


def too_long(name: str) -> str | None:
    """The error for a name over the limit, else None."""
    return f"the name is {TOO_LONG}" if len(name) > MAX_NAME_CHARS else None


def read_argument(number: int, name: str) -> tuple[int, str, str | None]:
    """(number, text, error or None) for a name given as the `number`th command-line argument,
    checked as a line is: bytes that are not UTF-8 (which Python keeps in its arguments as lone
    surrogates) are an error, shown with U+FFFD for them as a line's would be."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape" if _escaped_bytes(name) else "replace")
        return number, shown.decode("utf-8", "replace"), f"argument {number} is not valid UTF-8"
    return number, name, too_long(name)


def _escaped_bytes(name: str) -> bool:
    """Whether every surrogate in `name` is one Python made of a byte (U+DC80 to U+DCFF)."""
    return all(not "\ud800" <= c <= "\udfff" or "\udc80" <= c <= "\udcff" for c in name)


def read_lines(handle: BinaryIO) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, error or None) for each line of a binary stream."""
    number = 0
    while True:
        raw = handle.readline(_MAX_LINE_BYTES)
        if not raw:
            return
        number += 1
        if not raw.endswith(b"\n") and len(raw) == _MAX_LINE_BYTES:
            _skip_rest_of_line(handle)
            yield number, _preview(raw.decode("utf-8", errors="replace")), f"line {number} is {TOO_LONG}"
            continue
        raw = raw.rstrip(b"\r\n")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, raw.decode("utf-8", errors="replace"), f"line {number} is not valid UTF-8"
            continue
        if len(text) > MAX_NAME_CHARS:
            yield number, _preview(text), f"line {number} is {TOO_LONG}"
        else:
            yield number, text, None


def _preview(text: str) -> str:
    return text[:40] + "..."


def _skip_rest_of_line(handle: BinaryIO) -> None:
    while (chunk := handle.readline(_SKIP_CHUNK)) and not chunk.endswith(b"\n"):
        pass
