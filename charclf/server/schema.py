"""The API's shapes, as pydantic models: the query parameters and the POST body, which FastAPI
(and the guard's direct calls, routes.Api.direct) validate requests with, and the JSON answers,
which the OpenAPI schema (/openapi.json, /docs) describes. The handlers write their answers
directly (charclf.predict.rows writes the predict rows); tests/test_serve_production.py checks
real answers against the schema. A request that fails validation is refused as requests.refusal
words it: 400 (413 for too many names) with {"error": message}, never FastAPI's 422 shape."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, RootModel, model_validator

from charclf.predict.options import PredictOptions, check
from charclf.server.requests import MAX_NAME_CHARS, MAX_NAME_LETTERS, MAX_NAMES, MAX_TOP_K, check_name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the schema lists every field an answer may have


class Error(Strict):
    error: str = Field(description="What was wrong, in one line")


class LabelProbability(Strict):
    label: str
    probability: float = Field(ge=0, le=1)


class Prediction(Strict):
    """One name's answer: what `charclf predict --json` prints for it."""

    name: str = Field(description="The name as sent")
    as_read: str = Field(description="The letters the model read (transliterated and folded)")
    script: str = Field(description="The writing system the name was typed in")
    label: str = Field(description="The top label, or unknown when the model abstains")
    abstained: bool
    reason: str | None = Field(None, description="Why it abstained, and caveats about the reading")
    best_guess: LabelProbability | None = Field(None, description="When abstaining: the top label all the same")
    predictions: list[LabelProbability] = Field(description="The top_k labels, best first")
    family_name: str | None = Field(None, description="With full_name: the part read")
    family_name_rule: str | None = None
    label_set: list[str] | None = Field(None, description="With coverage: the conformal label set")
    model: str | None = Field(None, description="The id of the model that answered")


class ModelInfo(Strict):
    model: str | None = Field(description="The model file's id: the first 16 hex digits of its sha256")
    format: str = Field(description="pt (torch) or onnx (ONNX Runtime)")
    labels: list[str]
    backbone: dict
    temperature: float
    precision: str
    metrics: dict
    versions: dict[str, str | None]


class Status(Strict):
    status: str


class Explanation(BaseModel):
    """What `charclf explain --json` prints."""

    name: str
    as_read: str
    caveats: list[str]
    label: str
    tracked: list[str]
    letters: list[dict]
    turning_points: list[dict]


# A name: a string, not blank (a character other than white space: the pattern), at most
# MAX_NAME_CHARS as typed (requests.check_name: 400 else). Its letters as read need the model's
# alphabet: the endpoints count them (requests.check_letters).
Name = Annotated[str, BeforeValidator(check_name),
                 Field(description=f"A name, in any script, not blank (at most {MAX_NAME_CHARS} characters and "
                                   f"{MAX_NAME_LETTERS} letters as read)",
                       json_schema_extra={"minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": r"\S"})]
# At least 1 (the options' rule, charclf.predict.options), at most MAX_TOP_K (what a request may cost).
TopK = Annotated[int, Field(description="Labels per name", le=MAX_TOP_K, json_schema_extra={"minimum": 1})]


class NameQuery(BaseModel):
    name: Name


class ExplainQuery(NameQuery):
    """GET /api/explain's query: a name and how many labels to show after each letter."""

    top_k: TopK = 3

    @model_validator(mode="after")
    def _k(self) -> "ExplainQuery":
        check("k", self.top_k)  # the rule every door shares (charclf.predict.options)
        return self


class PredictQuery(BaseModel):
    """POST /api/predict's query: predict's options, as `charclf predict` takes them (a prior is
    uniform or train here: a file of weights is for the command line)."""

    top_k: TopK = 3
    min_confidence: float | None = Field(None, description="Answer unknown below this top probability",
                                         json_schema_extra={"minimum": 0, "maximum": 1})
    coverage: float | None = Field(None, description="Add a conformal label set holding the true label this often "
                                                     "(not with prior=uniform)",
                                   json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1})
    prior: Literal["uniform", "train"] | None = Field(None, description="uniform: reweight to equal label "
                                                                        "frequencies")
    full_name: bool = Field(False, description="Classify the family name of a full name")
    _options: PredictOptions = PrivateAttr()

    @model_validator(mode="after")
    def _checked(self) -> "PredictQuery":
        """The options checked as every door checks them (an OptionError, worded by requests.refusal)."""
        self._options = PredictOptions(self.top_k, self.min_confidence, self.coverage, self.prior, self.full_name)
        return self

    @property
    def options(self) -> PredictOptions:
        return self._options


class PredictOneQuery(PredictQuery, NameQuery):
    """GET /api/predict's query: a name and predict's options."""


class Names(RootModel):
    """POST /api/predict's body: a JSON list of names (1 to MAX_NAMES)."""

    root: list[Name] = Field(min_length=1, max_length=MAX_NAMES)


ERRORS = {status: {"model": Error, "description": text} for status, text in (
    (400, "A bad request: a parameter or the body"), (401, "No valid API key (when the server has keys)"),
    (413, "Too many names, letters or bytes"), (415, "A POST body that is not application/json"),
    (503, "Busy (too many requests in flight) or shutting down; see Retry-After"),
    ("4XX", "Any refusal: one line saying what was wrong"))}


# A coverage and prior=uniform do not combine (charclf.predict.options.COMBINED). OpenAPI can say so
# of a query only when the query is one object: a parameter of style form, exploded, which is the
# same query string (name=Hinton&top_k=3), with its fields as the object's properties.
NOT_COMBINED = {"not": {"required": ["coverage", "prior"], "properties": {"prior": {"const": "uniform"}}}}


def describe_queries(app) -> None:
    """Make `app`'s /openapi.json describe /api/predict's query as one object saying which of its
    options combine (FastAPI lists each query parameter on its own, which cannot)."""
    made = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = made()  # FastAPI's, kept in app.openapi_schema: changed in place
            for operation in spec["paths"]["/api/predict"].values():
                operation["parameters"] = [query_object(operation["parameters"])]
        return app.openapi_schema

    app.openapi = openapi


def query_object(parameters: list[dict]) -> dict:
    """FastAPI's query parameters as one parameter of style form, exploded, its schema an object
    (not closed to other properties: a parameter the API does not know, a cache buster say, is
    ignored, and the schema says no more than the server does)."""
    properties = {}
    for parameter in parameters:
        schema = dict(parameter["schema"])
        kinds = [kind for kind in schema.pop("anyOf", []) if kind.get("type") != "null"]  # never null in a query
        properties[parameter["name"]] = {**(kinds[0] if kinds else {}), **schema}
    required = [parameter["name"] for parameter in parameters if parameter.get("required")]
    return {"name": "query", "in": "query", "style": "form", "explode": True, "required": bool(required),
            "description": "The query's parameters, each as name=value (coverage and prior=uniform do not combine)",
            "schema": {"type": "object", "properties": properties, "required": required, **NOT_COMBINED}}
