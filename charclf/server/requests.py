"""What a request may ask, checked before any model work: the limits on names and bodies, and how
a refusal is worded.

The query parameters and the POST body are validated by the pydantic models of schema.py (which
call check_name); what fails is worded here (refusal). Every refusal is an ApiError (a status and
a one-line message, sent as {"error": message}).
The limits bound what one request can cost: a name is counted in the letters the model reads
after transliteration (one typed character can read as 27 letters: U+FDFA), a body in bytes,
its JSON in nesting depth (a JSON parser recurses once per level), and its arrival in seconds."""

from __future__ import annotations

import asyncio
import re

from charclf.names.reader import read

MAX_NAME_CHARS = 100  # typed characters per name: the longest name in the dataset has 20 letters
MAX_NAME_LETTERS = 100  # letters per name as the model reads them (after transliteration)
MAX_REQUEST_LETTERS = 25_000  # letters as read per request, all names together
MAX_NAMES = 1000  # names per POST /api/predict
MAX_BODY_BYTES = 64 * 1024  # a POST body larger than this is refused (413) before it is parsed
MAX_JSON_DEPTH = 4  # a list of names needs 1; deeper is refused (400) before it is parsed
MAX_TOP_K = 50
JSON_LIST_HINT = 'the body must be a JSON list of names, e.g. ["Hinton", "Satoshi"]'
QUERY_SPELLING = {"k": "top_k", "full_names": "full_name"}  # predict's options as the query names them
# pydantic's error types, as this API words them after the parameter's name (ctx filled in).
WORDS = {"int_parsing": "must be a whole number", "int_from_float": "must be a whole number",
         "float_parsing": "must be a number", "bool_parsing": "must be true or false",
         "literal_error": "must be {expected}", "less_than_equal": "must be at most {le}"}


class ApiError(Exception):
    """A request the API refuses: HTTP `status` with a one-line message (and extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


def check_name(name) -> str:
    if not isinstance(name, str):
        raise ApiError(400, f"a name must be a string, got {json_type(name)}")
    if not name.strip():
        raise ApiError(400, "empty name")
    if len(name) > MAX_NAME_CHARS:
        raise ApiError(400, f"name too long: {len(name)} characters, at most {MAX_NAME_CHARS}")
    return name


def letters_as_read(name: str, alphabet: str) -> int:
    """How many letters the model reads for `name` (ASCII: at most its length, which is cheap)."""
    return len(name) if name.isascii() else len(read(name, alphabet).as_read)


def check_letters(names: list[str], alphabet: str) -> None:
    """400 when a name, or all of them together, read as more letters than the limits allow."""
    total = 0
    for name in names:
        letters = letters_as_read(name, alphabet)
        if letters > MAX_NAME_LETTERS:
            raise ApiError(400, f"name too long as read: {letters} letters after transliteration, "
                                f"at most {MAX_NAME_LETTERS}")
        total += letters
        if total > MAX_REQUEST_LETTERS:
            raise ApiError(413, f"too many letters: the names read as over {MAX_REQUEST_LETTERS} letters "
                                "after transliteration; send fewer names per request")


async def read_body(request, seconds: float) -> bytes:
    """The JSON body of a POST: 415 unless it says it is JSON (a web page cannot send that
    cross-site without asking first), 413 as soon as it is known to pass MAX_BODY_BYTES, 408
    when it has not all arrived within `seconds`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, f"the body must be sent as Content-Type: application/json, not {kind or 'none'}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {seconds:g} s",
                       headers={"connection": "close"}) from None
    return bytes(body)


# A JSON string token (escapes included), and the brackets left once strings are blanked out.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def check_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when the JSON nests deeper than `limit`, found without parsing it (a parser would
    recurse once per level and can run out of stack)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if bracket.group() in b"[{" else -1
        if depth > limit:
            raise ApiError(400, f"the JSON nests deeper than {limit} levels; {JSON_LIST_HINT}")


def refusal(errors: list[dict]) -> ApiError:
    """The ApiError for a request its pydantic model (schema.py) refused: the first problem, in one
    line. predict's options are worded as at every door (charclf.predict.options), named as the
    query names them; too many names is 413, the rest 400."""
    from charclf.predict.options import OptionError

    error = errors[0]
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    field = next((part for part in reversed(error.get("loc", ())) if part not in ("query", "body")), None)
    if isinstance(ctx.get("error"), OptionError):
        return ApiError(400, ctx["error"].worded(QUERY_SPELLING))
    if kind == "missing":
        return ApiError(400, f"missing query parameter: {field}")
    if isinstance(field, str):  # a query parameter
        words = WORDS.get(kind, "").format(**ctx) or error["msg"].lower()
        return ApiError(400, f"{field} {words}, got {given!r}")
    if kind == "too_long":  # the POST body: a list of names
        count = f"{len(given)}, at most" if isinstance(given, list) else "more than"
        return ApiError(413, f"too many names: {count} {MAX_NAMES} per request")
    if kind == "too_short":
        return ApiError(400, "no names: the list is empty")
    if kind == "list_type":
        return ApiError(400, f"the body must be a JSON list of names, got {json_type(given)}")
    return ApiError(400, JSON_LIST_HINT)


def json_type(value) -> str:
    """A parsed JSON value's type, in JSON's words (for error messages)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
