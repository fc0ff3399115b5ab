"""The endpoints: the page, the JSON API, the probes and the metrics.

Every model call runs in a worker thread (never on the event loop), at most `threads` at a time;
predict requests that arrive while the model is busy are answered together (batcher.py)."""

from __future__ import annotations

import anyio
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from charclf.errors import CharclfError
from charclf.server import schema
from charclf.server.requests import ApiError, parse_names, read_body, read_k, read_name_param, read_options


class Api:
    def __init__(self, clf, batcher, settings, lifecycle, metrics, page: str, model_info: dict):
        self.clf, self.batcher, self.settings = clf, batcher, settings
        self.lifecycle, self.metrics = lifecycle, metrics
        self.page, self.model_info = page, model_info

    async def predict_one(self, request: Request) -> Response:
        name = read_name_param(request, self.clf.alphabet)
        options = read_options(request, self.clf)
        self.metrics.names_per_request.observe(1)
        return json_text((await self.batcher.predict([name], **options))[0])

    async def predict_many(self, request: Request) -> Response:
        options = read_options(request, self.clf)
        names = parse_names(await read_body(request, self.settings.body_seconds), self.clf.alphabet)
        self.metrics.names_per_request.observe(len(names))
        rows = await self.batcher.predict(names, **options)
        return json_text("[" + ", ".join(rows) + "]")

    async def explain(self, request: Request) -> Response:
        name = read_name_param(request, self.clf.alphabet)
        k = read_k(request)
        if not hasattr(self.clf, "explain"):
            raise ApiError(501, "explain needs the server's model to be a .pt checkpoint")
        try:
            result = await anyio.to_thread.run_sync(self.clf.explain, name, k, limiter=self.batcher.limiter)
        except CharclfError as e:  # a name with no letters to read
            raise ApiError(422, str(e)) from None
        return JSONResponse(result)

    async def model(self, request: Request) -> Response:
        return JSONResponse(self.model_info)

    async def page_html(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    async def livez(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.lifecycle.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if not self.lifecycle.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_text(self, request: Request) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

    def direct(self) -> dict:
        """The endpoints the guard calls itself, by (method, path): the busy, simple ones."""
        return {("GET", "/api/predict"): self.predict_one, ("POST", "/api/predict"): self.predict_many,
                ("GET", "/livez"): self.livez, ("GET", "/healthz"): self.livez, ("GET", "/readyz"): self.readyz}

    def add_to(self, app) -> None:
        errors = schema.ERRORS
        get = lambda path, endpoint, **kw: app.add_api_route(path, endpoint, methods=["GET"], **kw)  # noqa: E731
        get("/", self.page_html, include_in_schema=False)
        get("/api/predict", self.predict_one, summary="Predict one name", responses={
            200: {"model": schema.Prediction}, **errors}, openapi_extra={"parameters": [schema.NAME,
                                                                                        *schema.PREDICT_OPTIONS]})
        app.add_api_route("/api/predict", self.predict_many, methods=["POST"], summary="Predict a list of names",
                          responses={200: {"model": list[schema.Prediction]}, **errors}, openapi_extra={
                              "parameters": schema.PREDICT_OPTIONS, "requestBody": {"required": True, "content": {
                                  "application/json": {"schema": {"type": "array", "items": {"type": "string"},
                                                                  "minItems": 1, "maxItems": 1000}}}}})
        get("/api/explain", self.explain, summary="How the answer forms, letter by letter", responses={
            200: {"model": schema.Explanation}, 422: {"model": schema.Error, "description": "No letters to read"},
            501: {"model": schema.Error, "description": "The model cannot explain"}, **errors},
            openapi_extra={"parameters": [schema.NAME, schema.TOP_K]})
        get("/api/model", self.model, summary="The model served", responses={200: {"model": schema.ModelInfo}})
        for path, endpoint, summary in (("/livez", self.livez, "The process is up"),
                                        ("/healthz", self.livez, "The process is up (as /livez)")):
            get(path, endpoint, summary=summary, responses={200: {"model": schema.Status}})
        get("/readyz", self.readyz, summary="The model is loaded and warm, and the server is not draining",
            responses={200: {"model": schema.Status}, 503: {"model": schema.Status, "description": "Not ready"}})
        get("/metrics", self.metrics_text, summary="Prometheus metrics", responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The text format"}})


def json_text(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="application/json")
