"""What a request may ask, read and checked before any model work: query options, names, bodies.

Every refusal is an ApiError (a status and a one-line message, sent as {"error": message}).
The limits bound what one request can cost: a name is counted in the letters the model reads
after transliteration (one typed character can read as 27 letters: U+FDFA), a body in bytes,
its JSON in nesting depth (json.loads recurses once per level), and its arrival in seconds."""

from __future__ import annotations

import asyncio
import json
import re

from charclf.errors import CharclfError
from charclf.names.reader import read

MAX_NAME_CHARS = 100  # typed characters per name: the longest name in the dataset has 20 letters
MAX_NAME_LETTERS = 100  # letters per name as the model reads them (after transliteration)
MAX_REQUEST_LETTERS = 25_000  # letters as read per request, all names together
MAX_NAMES = 1000  # names per POST /api/predict
MAX_BODY_BYTES = 64 * 1024  # a POST body larger than this is refused (413) before it is parsed
MAX_JSON_DEPTH = 4  # a list of names needs 1; deeper is refused (400) before json.loads sees it
MAX_TOP_K = 50
JSON_LIST_HINT = 'the body must be a JSON list of names, e.g. ["Hinton", "Satoshi"]'


class ApiError(Exception):
    """A request the API refuses: HTTP `status` with a one-line message (and extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


def read_name_param(request, alphabet: str) -> str:
    if "name" not in request.query_params:
        raise ApiError(400, "missing query parameter: name")
    name = check_name(request.query_params["name"])
    check_letters([name], alphabet)
    return name


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


def read_k(request) -> int:
    return int(read_number(request, "top_k", 3, int, 1, MAX_TOP_K))


def read_options(request, clf) -> dict:
    """predict's options from the query: top_k, min_confidence, and as `charclf predict` takes them
    coverage (a conformal label set), prior (uniform or train: a file of weights is for the command
    line) and full_name (1/true: classify the family name)."""
    options = {"k": read_k(request), "min_confidence": read_number(request, "min_confidence", None, float, 0.0, 1.0)}
    coverage = read_number(request, "coverage", None, float, 0.0, 1.0)
    prior = request.query_params.get("prior")
    full_name = request.query_params.get("full_name", "false").lower()
    if coverage is not None and not 0 < coverage < 1:
        raise ApiError(400, f"coverage must be between 0 and 1 (exclusive), got {coverage!r}")
    if prior not in (None, "uniform", "train"):
        raise ApiError(400, f"prior must be uniform or train, got {prior!r}")
    if full_name not in ("0", "1", "false", "true"):
        raise ApiError(400, f"full_name must be true or false, got {full_name!r}")
    if coverage is not None and prior == "uniform":
        raise ApiError(400, "coverage and prior cannot be combined: label sets keep their coverage for the "
                            "training population only")
    try:
        if coverage is not None:
            clf.set_threshold(coverage)
        if prior == "uniform":
            priors_available(clf)
    except CharclfError as e:
        raise ApiError(400, str(e)) from None
    full = full_name in ("1", "true")
    return {**options, **({"coverage": coverage} if coverage is not None else {}),
            **({"prior": prior} if prior == "uniform" else {}), **({"full_names": True} if full else {})}


def priors_available(clf) -> None:
    """CharclfError when the model records no training label counts (then no prior can apply)."""
    from charclf.predict.priors import training_prior

    training_prior(clf.train_counts, "uniform")


def read_number(request, key: str, default, kind, low, high):
    text = request.query_params.get(key)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ApiError(400, f"{key} must be a {'whole ' if kind is int else ''}number, got {text!r}") from None
    if not low <= value <= high:  # NaN fails this too
        raise ApiError(400, f"{key} must be between {low} and {high}, got {text!r}")
    return value


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
    """400 when the JSON nests deeper than `limit`, found without parsing it (json.loads would
    recurse once per level and can run out of stack)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if bracket.group() in b"[{" else -1
        if depth > limit:
            raise ApiError(400, f"the JSON nests deeper than {limit} levels; {JSON_LIST_HINT}")


def parse_names(body: bytes, alphabet: str) -> list[str]:
    """A POST body: a JSON list of 1 to MAX_NAMES names, within the letters-as-read limits."""
    check_depth(body)
    try:
        names = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, JSON_LIST_HINT) from None
    if not isinstance(names, list):
        raise ApiError(400, f"the body must be a JSON list of names, got {json_type(names)}")
    if not names:
        raise ApiError(400, "no names: the list is empty")
    if len(names) > MAX_NAMES:
        raise ApiError(413, f"too many names: {len(names)}, at most {MAX_NAMES} per request")
    names = [check_name(name) for name in names]
    check_letters(names, alphabet)
    return names


def json_type(value) -> str:
    """A parsed JSON value's type, in JSON's words (for error messages)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
