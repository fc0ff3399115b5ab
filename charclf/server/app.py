"""`charclf serve`'s application: the model behind a JSON API, a web page, probes and metrics
(the `serve` extra: FastAPI over Starlette, uvicorn, prometheus_client).

create_app() builds it over a loaded model; app_from_env() is the factory each worker process
of `serve --workers N` calls, with the settings `charclf serve` put in the environment. Bad
requests get a 4xx JSON {"error": message}; nothing reaches the client as a traceback.
The parts: routes.py (endpoints), requests.py (limits on what a request may ask), guard.py
(hosts, keys, concurrency, request ids, the access log), lifecycle.py (ready, draining),
metrics.py, logs.py, schema.py (OpenAPI), batcher.py (requests waiting together share a call).
"""

from __future__ import annotations

import platform
from contextlib import asynccontextmanager
from importlib import metadata, resources

from charclf.errors import CharclfError
from charclf.server.settings import Settings, read_api_keys

WARM_UP_NAMES = ["Hinton", "Иванов", "山田"]  # one call before /readyz says ready: the first is the slowest


def missing_extra() -> CharclfError:
    from charclf.extras import install_hint

    return CharclfError(install_hint("fastapi"))


def require_extra() -> None:
    """Raise a one-line CharclfError when the serve extra is not installed."""
    try:
        import fastapi  # noqa: F401
        import httptools  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise missing_extra() from None


def load_model(settings: Settings):
    """The model `settings` names (a .pt or .onnx file), as charclf.load reads it; a torch model
    computes on one thread per call (`settings.threads` calls at once use the cores better)."""
    import charclf

    clf = charclf.load(settings.checkpoint, device=settings.device, precision=settings.precision,
                       backend=settings.backend)
    if clf.backend.name == "torch":
        from charclf.threads import use_threads

        use_threads(1)
    return clf


def check_model(settings: Settings) -> str:
    """Load the model once in a fresh process and return its id (a bad file: its one-line
    CharclfError here): `serve --workers N` checks it so, and its own process stays small."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_model_id, settings).result()


def _model_id(settings: Settings) -> str:
    return load_model(settings).model_id


def app_from_env():
    """The application of one worker process: settings from the environment, its own model."""
    settings = Settings.from_env()
    return create_app(load_model(settings), settings)


def create_app(clf, settings: Settings | None = None, keys: list[str] | None = None):
    """The application serving `clf` (charclf.load's Classifier, on either backend); `keys`: the
    API keys (default: read as `settings` says)."""
    require_extra()
    import anyio
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.middleware.cors import CORSMiddleware

    from charclf.server import schema
    from charclf.server.batcher import PredictBatcher
    from charclf.server.guard import Guard
    from charclf.server.lifecycle import Lifecycle
    from charclf.server.logs import AccessLog, RateLimitedLoopErrors
    from charclf.server.metrics import Metrics
    from charclf.server.requests import ApiError
    from charclf.server.routes import Api

    settings = settings or Settings()
    keys = read_api_keys(settings.api_key_file) if keys is None else keys
    lifecycle, metrics = Lifecycle(settings.drain_seconds), Metrics()
    batcher = PredictBatcher(clf, settings.threads, settings.max_batch, observe=metrics.observe_call)
    info = describe_model(clf)
    metrics.model.labels(info["model"] or "unknown", info["format"]).set(1)

    @asynccontextmanager
    async def lifespan(app):
        import asyncio

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(RateLimitedLoopErrors())
        lifecycle.take_over_signals(loop)
        await anyio.to_thread.run_sync(clf.predict, WARM_UP_NAMES)
        lifecycle.ready = True
        yield

    app = FastAPI(title="charclf", version=info["versions"]["charclf"] or "unknown", lifespan=lifespan,
                  redirect_slashes=False, description="Guess a name's language of origin from its spelling.")
    app.state.lifecycle = lifecycle
    page = resources.files("charclf.server").joinpath("web/index.html").read_text(encoding="utf-8")
    api = Api(clf, batcher, settings, lifecycle, metrics, page, info)
    api.add_to(app)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type", "authorization", "x-api-key", "x-request-id"],
                           expose_headers=["x-request-id", "retry-after"])
    app.add_middleware(Guard, hosts=settings.hosts(), keys=keys, max_concurrency=settings.max_concurrency,
                       lifecycle=lifecycle, metrics=metrics, direct=api.direct(), methods=route_methods(app),
                       access_log=AccessLog(settings.log_format, settings.access_log))
    schema.describe_queries(app)
    return app


def route_methods(app) -> dict[str, frozenset[str]]:
    """Each path of `app` -> the methods its routes answer, all together."""
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        methods.setdefault(route.path, set()).update(getattr(route, "methods", None) or ())
    return {path: frozenset(names) for path, names in methods.items() if names}


# Every error is a JSON {"error": ...}: ours (4xx with a message), a query that fails its model, and
# starlette's (404, 405).
async def api_error(request, error):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)


async def validation_error(request, error):
    """A query its pydantic model refused: 400 (or 413) and {"error": ...}, as requests.refusal words
    it, never FastAPI's 422 with a list of details."""
    from charclf.server.requests import refusal

    return await api_error(request, refusal(error.errors()))


async def http_error(request, error):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)


def describe_model(clf) -> dict:
    """GET /api/model: the same for a .pt and its .onnx export (both carry the model card), and
    no file-system path: the model is named by its id."""
    from charclf.files.card import card_of_description

    card = card_of_description(clf.checkpoint)
    model, training = card.get("model", {}), card.get("training", {})
    return {
        "model": clf.model_id,
        "format": "onnx" if clf.backend.name == "onnx" else "pt",
        "labels": list(clf.labels),
        "backbone": {"arch": model.get("backbone")} | {k: v for k, v in model.items() if k not in ("backbone",
                                                                                                   "parameters")},
        "temperature": clf.temperature,
        "precision": clf.precision,
        "metrics": {key: value for key, value in (("val", card.get("metrics", {}).get("val")),
                                                  ("test", card.get("metrics", {}).get("test")),
                                                  ("best_epoch", training.get("best_epoch")),
                                                  ("epochs_run", training.get("epochs_run")),
                                                  ("parameters", model.get("parameters"))) if value is not None},
        "versions": {package: _version(package) for package in ("charclf", "torch", "onnxruntime", "fastapi",
                                                                "starlette", "uvicorn")}
        | {"python": platform.python_version()},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
