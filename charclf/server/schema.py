"""The API's shapes for its OpenAPI schema (/openapi.json, /docs): pydantic models of the JSON
answers, and the query parameters. The handlers build their answers directly (charclf.predict.rows
writes the predict rows), so these describe them; tests/test_serve_production.py checks real
answers against the schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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


def query(name: str, description: str, kind: str = "string", required: bool = False, **bounds) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": kind, **bounds}}


NAME = query("name", "A name, in any script (at most 100 characters and 100 letters as read)", required=True)
TOP_K = query("top_k", "Labels per name", "integer", minimum=1, maximum=50, default=3)
PREDICT_OPTIONS = [
    TOP_K,
    query("min_confidence", "Answer unknown below this top probability", "number", minimum=0, maximum=1),
    query("coverage", "Add a conformal label set holding the true label this often (a .pt model)", "number",
          exclusiveMinimum=0, exclusiveMaximum=1),
    query("prior", "uniform: reweight to equal label frequencies (a .pt model)", enum=["uniform", "train"]),
    query("full_name", "Classify the family name of a full name", enum=["true", "false", "1", "0"]),
]
ERRORS = {status: {"model": Error, "description": text} for status, text in (
    (400, "A bad request"), (401, "No valid API key (when the server has keys)"),
    (413, "Too many names, letters or bytes"), (415, "A POST body that is not application/json"),
    (503, "Busy (too many requests in flight) or shutting down; see Retry-After"))}
