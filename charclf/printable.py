"""Text as a terminal or a log line may receive it: printable (no imports beyond the standard library).

Whatever charclf writes to a terminal or a log that came from outside (a name, a file name, a
model card's strings, a request's path) goes through printable(): a control character (ESC
starting a colour or title sequence, a newline forging a line), a bidirectional override, a
zero-width character or a lone surrogate becomes a backslash escape, so one line stays one
line and shows what was sent. JSON output needs none of this: json.dumps escapes them itself."""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, quoted: str = "") -> str:
    """`text` with every character that is not printable (str.isprintable; a space is) written as
    a backslash escape (\\n, \\x1b, \\u202e, \\udcff). The characters of `quoted` (a log line's
    quote mark, say) are escaped too, and then the backslash itself, so the line reads one way."""
    if text.isprintable() and not (quoted and any(c in text for c in quoted + "\\")):
        return text  # the usual case, at the cost of one scan
    escaped = set(quoted + "\\") if quoted else set()
    return "".join(_escape(c) if not c.isprintable() or c in escaped else c for c in text)


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    if c.isprintable():  # a quote mark or the backslash
        return "\\" + c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable_strings(value):
    """`value` (parsed JSON: dicts, lists, strings, numbers) with every string, keys included, printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_strings(k): printable_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_strings(v) for v in value]
    return value
