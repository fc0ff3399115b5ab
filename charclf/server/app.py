"""`charclf serve`: the model behind a small HTTP API and a web page (the `serve` extra:
starlette and uvicorn).

The model is loaded once. Every model call runs in a worker thread (never on the event loop),
at most `workers` at a time, each on one torch thread: requests are small, so several at once
use the cores better than one request spread over them. Predict requests that arrive while the
model is busy are answered together in one call (charclf.server.batcher), bounded in size. Bad requests
get a 4xx JSON {"error": message}; nothing reaches the client as a traceback.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata, resources

from charclf.errors import CharclfError

MAX_NAME_CHARS = 100  # longer "names" are refused: the longest in the dataset has 20 letters
MAX_NAMES = 1000  # names per POST /api/predict
MAX_BODY_BYTES = 64 * 1024  # a POST body larger than this is refused (413) before it is parsed
MAX_TOP_K = 50


class ApiError(Exception):
    """A request the API refuses: HTTP `status` with a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def missing_extra() -> CharclfError:
    return CharclfError("charclf serve needs its optional packages: pip install 'charclf[serve]'")


def create_app(clf, workers: int = 1, max_batch: int | None = None):
    """The Starlette application serving `clf` (a loaded Classifier); `max_batch`: names per
    model call at most (default batcher.MAX_BATCH_NAMES; 1: every request alone)."""
    try:
        import anyio
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError:
        raise missing_extra() from None

    from charclf.server.batcher import MAX_BATCH_NAMES, PredictBatcher

    batcher = PredictBatcher(clf, workers, max_batch or MAX_BATCH_NAMES)
    page = resources.files("charclf.server").joinpath("web/index.html").read_text(encoding="utf-8")
    model_info = describe_model(clf)

    async def in_worker(function, *args):
        return await anyio.to_thread.run_sync(function, *args, limiter=batcher.limiter)

    def json_text(text: str, status: int = 200):
        return Response(text, status_code=status, media_type="application/json")

    async def predict_one(request):
        name = read_name_param(request)
        return json_text((await batcher.predict([name], **read_options(request, clf)))[0])

    async def predict_many(request):
        names = parse_names(await read_body(request))
        rows = await batcher.predict(names, **read_options(request, clf))
        return json_text("[" + ", ".join(rows) + "]")

    async def explain(request):
        name = read_name_param(request)
        k = read_k(request)
        try:
            result = await in_worker(clf.explain, name, k)
        except CharclfError as e:  # a name with no letters to read
            raise ApiError(422, str(e)) from None
        return JSONResponse(result)

    routes = [
        Route("/", lambda request: HTMLResponse(page)),
        Route("/healthz", lambda request: JSONResponse({"status": "ok"})),
        Route("/api/model", lambda request: JSONResponse(model_info)),
        Route("/api/predict", predict_one, methods=["GET"]),
        Route("/api/predict", predict_many, methods=["POST"]),
        Route("/api/explain", explain, methods=["GET"]),
    ]
    handlers = {ApiError: api_error, HTTPException: http_error, Exception: server_error}
    return Starlette(routes=routes, exception_handlers=handlers)


# Every error is a JSON {"error": ...}: ours (4xx with a message), starlette's (404, 405), and
# anything unforeseen (500, without the traceback).
async def api_error(request, error: ApiError):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": str(error)}, status_code=error.status)


async def http_error(request, error):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)


async def server_error(request, error: Exception):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": "internal error: the server could not answer this request"}, status_code=500)


def read_name_param(request) -> str:
    if "name" not in request.query_params:
        raise ApiError(400, "missing query parameter: name")
    return check_name(request.query_params["name"])


def check_name(name) -> str:
    if not isinstance(name, str):
        raise ApiError(400, f"a name must be a string, got {json_type(name)}")
    if not name.strip():
        raise ApiError(400, "empty name")
    if len(name) > MAX_NAME_CHARS:
        raise ApiError(400, f"name too long: {len(name)} characters, at most {MAX_NAME_CHARS}")
    return name


def read_k(request) -> int:
    return int(read_number(request, "top_k", 3, int, 1, MAX_TOP_K))


def read_min_confidence(request) -> float | None:
    return read_number(request, "min_confidence", None, float, 0.0, 1.0)


def read_options(request, clf) -> dict:
    """predict's options from the query: top_k, min_confidence, and as `charclf predict` takes them
    coverage (a conformal label set), prior (uniform or train: a file of weights is for the command
    line) and full_name (1/true: classify the family name)."""
    options = {"k": read_k(request), "min_confidence": read_min_confidence(request)}
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
    if (coverage is not None or prior == "uniform") and not hasattr(clf, "set_threshold"):
        raise ApiError(400, "coverage and prior need the server's model to be a .pt checkpoint")
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


async def read_body(request) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    return bytes(body)


def parse_names(body: bytes) -> list[str]:
    """A POST body: a JSON list of 1 to MAX_NAMES names."""
    try:
        names = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, 'the body must be a JSON list of names, e.g. ["Hinton", "Satoshi"]') from None
    if not isinstance(names, list):
        raise ApiError(400, f"the body must be a JSON list of names, got {json_type(names)}")
    if not names:
        raise ApiError(400, "no names: the list is empty")
    if len(names) > MAX_NAMES:
        raise ApiError(413, f"too many names: {len(names)}, at most {MAX_NAMES} per request")
    return [check_name(name) for name in names]


def json_type(value) -> str:
    """A parsed JSON value's type, in JSON's words (for error messages)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def describe_model(clf) -> dict:
    """GET /api/model: the labels, the backbone's settings, its recorded scores and versions."""
    from dataclasses import asdict

    metrics = clf.checkpoint.metrics
    return {
        "checkpoint": str(clf.path),
        "labels": clf.labels,
        "backbone": asdict(clf.checkpoint.model_config),
        "temperature": clf.temperature,
        "precision": clf.precision,
        "metrics": {key: metrics[key] for key in ("val", "test", "best_epoch", "epochs_run", "parameters")
                    if key in metrics},
        "versions": {package: _version(package) for package in ("charclf", "torch", "starlette", "uvicorn")}
        | {"python": platform.python_version()},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def require_extra() -> None:
    """Raise a one-line CharclfError when the serve extra is not installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise missing_extra() from None


def run_server(clf, host: str, port: int, workers: int, max_batch: int | None = None, log_level: str = "warning",
               on_ready=None) -> None:
    """Serve `clf` on host:port until interrupted (Ctrl-C or SIGTERM end it cleanly); call
    on_ready() once the address is bound."""
    import socket

    require_extra()
    import uvicorn

    app = create_app(clf, workers, max_batch)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:  # in use, not an address of this machine, a privileged port ...
        sock.close()
        raise CharclfError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    if on_ready:
        on_ready()
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
