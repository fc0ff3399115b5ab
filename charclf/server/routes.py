"""The endpoints: the page, the JSON API, the probes and the metrics.

Query parameters and POST bodies are validated by the pydantic models of schema.py: by FastAPI,
or, for the busy endpoints the guard calls itself (Api.direct), by the same models here. Every
model call runs in a worker thread (never on the event loop), at most `threads` at a time;
predict requests that arrive while the model is busy are answered together (batcher.py)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from charclf.errors import CharclfError
from charclf.server import schema
from charclf.server.requests import ApiError, check_depth, check_letters, read_body, refusal


class Api:
    def __init__(self, clf, batcher, settings, lifecycle, metrics, page: str, model_info: dict):
        self.clf, self.batcher, self.settings = clf, batcher, settings
        self.lifecycle, self.metrics = lifecycle, metrics
        self.page, self.model_info = page, model_info

    async def predict_one(self, query: Annotated[schema.PredictOneQuery, Query()]) -> Response:
        check_letters([query.name], self.clf.alphabet)
        options = self.for_model(query.options)
        self.metrics.names_per_request.observe(1)
        return json_text((await self.batcher.predict([query.name], **options.keywords()))[0])

    async def predict_many(self, request: Request, query: Annotated[schema.PredictQuery, Query()]) -> Response:
        options = self.for_model(query.options)
        body = await read_body(request, self.settings.body_seconds)
        check_depth(body)
        names = validated(schema.Names, body).root
        check_letters(names, self.clf.alphabet)
        self.metrics.names_per_request.observe(len(names))
        rows = await self.batcher.predict(names, **options.keywords())
        return json_text("[" + ", ".join(rows) + "]")

    async def explain(self, query: Annotated[schema.ExplainQuery, Query()]) -> Response:
        check_letters([query.name], self.clf.alphabet)
        try:
            result = await anyio.to_thread.run_sync(self.clf.explain, query.name, query.top_k,
                                                    limiter=self.batcher.limiter)
        except CharclfError as e:  # a name with no letters to read
            raise ApiError(422, str(e)) from None
        return JSONResponse(result)

    def for_model(self, options):
        """`options` (charclf.predict.options.PredictOptions) checked against the served model: a
        coverage needs its label sets, a prior its training label counts (400 else)."""
        try:
            return options.for_model(self.clf)
        except CharclfError as e:
            raise ApiError(400, str(e)) from None

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
        """The endpoints the guard calls itself, by (method, path): the busy, simple ones, each a
        function of the Request that validates its query with the model FastAPI would use."""
        return {("GET", "/api/predict"): lambda request: self.predict_one(validated(schema.PredictOneQuery,
                                                                                   request.query_params)),
                ("POST", "/api/predict"): lambda request: self.predict_many(
                    request, validated(schema.PredictQuery, request.query_params)),
                ("GET", "/livez"): self.livez, ("GET", "/healthz"): self.livez, ("GET", "/readyz"): self.readyz}

    def add_to(self, app) -> None:
        errors = schema.ERRORS
        get = lambda path, endpoint, **kw: app.add_api_route(path, endpoint, methods=["GET"], **kw)  # noqa: E731
        get("/", self.page_html, include_in_schema=False)
        get("/api/predict", self.predict_one, summary="Predict one name", responses={
            200: {"model": schema.Prediction}, **errors})
        app.add_api_route("/api/predict", self.predict_many, methods=["POST"], summary="Predict a list of names",
                          responses={200: {"model": list[schema.Prediction]}, **errors}, openapi_extra={
                              "requestBody": {"required": True, "content": {"application/json": {
                                  "schema": schema.Names.model_json_schema()}}}})
        get("/api/explain", self.explain, summary="How the answer forms, letter by letter", responses={
            200: {"model": schema.Explanation}, 422: {"model": schema.Error, "description": "No letters to read"},
            **errors})
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


def validated(model, data):
    """`data` (query parameters, or a JSON body's bytes) as the pydantic `model`; what fails it is
    refused as requests.refusal words it."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise refusal(e.errors()) from None
