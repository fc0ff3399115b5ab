"""What a model file says about its model, apart from the weights: shape, alphabet, labels, how it
was trained, its scores, its calibration and its script table (no torch here). A .pt checkpoint
holds it beside the weights (charclf.files.checkpoint); an exported .onnx file holds it as JSON in
its metadata (charclf.files.export). Both are checked here, by the same rules, before use; each
problem is a one-line CheckpointError."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from charclf.config import MAX_SEED, ModelConfig, saved_model_config
from charclf.errors import CheckpointError
from charclf.files.card_fields import check_card_tables
from charclf.names.text import label_problem

FORMAT = 2  # 2: purely recurrent models (mean+max pooling, lower-cased letters) or the n-gram baseline
REQUIRED = ("format", "model_config", "alphabet", "labels", "train_config", "metrics")
# fit_temperature searches [1/100, 100]; anything outside was not fitted by charclf.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
MAX_JSON_DEPTH = 16  # the description's nesting (its deepest table is about 5 levels)


@dataclass
class ModelDescription:
    """Everything `predict` and `evaluate` need to know about a model besides its weights."""

    model_config: ModelConfig
    alphabet: str
    labels: list[str]
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # {"temperature": T, "fit_on": "val", "conformal": {...}, "train_counts": [...]}: logits are
    # divided by T before the softmax. Optional in the file: absent, T = 1 (raw softmax).
    calibration: dict[str, Any] = field(default_factory=dict)
    # {"probabilities": {label: {script: P(script | label)}}, "counts": ...}, learned from the raw
    # training names (charclf.predict.evidence.learn). Optional in the file: absent, {} (no table).
    scripts: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        return float(self.calibration.get("temperature", 1.0))

    def as_payload(self) -> dict[str, Any]:
        """Plain types, as a file stores them (with the format version)."""
        return {"format": FORMAT, "model_config": asdict(self.model_config), "alphabet": self.alphabet,
                "labels": list(self.labels), "train_config": self.train_config, "metrics": self.metrics,
                "calibration": self.calibration, "scripts": self.scripts}

    def to_json(self) -> str:
        return json.dumps(self.as_payload())


def describe(payload: Any) -> ModelDescription:
    """A file's payload (plain types; a checkpoint's may hold its weights too) -> its checked
    ModelDescription, or a one-line CheckpointError saying what is wrong."""
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError("not a charclf model (no format version)")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"model format {str(payload['format'])[:20]} is not supported (this charclf reads "
                              f"format {FORMAT}: retrain or export it again with this version)")
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"not a complete charclf model (missing {', '.join(missing)})")
    if not isinstance(payload["model_config"], dict):
        raise CheckpointError("bad model config (not a table of settings)")
    try:
        config = saved_model_config(payload["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad model config ({short(e)})") from None
    alphabet, labels = payload["alphabet"], payload["labels"]
    _check_alphabet(alphabet, config.n_letters, config.lowercase)
    _check_labels(labels, config.n_classes)
    for key in ("train_config", "metrics"):
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"its {key} is not a table")
    seed = payload["train_config"].get("seed", 0)
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise CheckpointError(f"its training seed is not a whole number from 0 to {MAX_SEED}")
    calibration = payload.get("calibration", {})
    _check_temperature(calibration)
    _check_label_set_scores(calibration, len(labels))
    scripts = payload.get("scripts", {})
    _check_scripts(scripts, labels)
    check_card_tables(payload)
    return ModelDescription(config, alphabet, labels, payload["train_config"], payload["metrics"], calibration, scripts)


def from_json(text: str) -> ModelDescription:
    """A description stored as JSON (an .onnx file's metadata), its nesting bounded before parsing."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise CheckpointError(f"its description nests deeper than {MAX_JSON_DEPTH} levels; refused")
    try:
        payload = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"its description is not readable JSON ({short(e)})") from None
    return describe(payload)


def json_depth(text: str) -> int:
    """How deeply JSON `text` nests its brackets (those inside strings do not count), without parsing
    it: json.loads recurses once per level and a few thousand levels raise RecursionError."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _check_label_set_scores(calibration: dict, n_labels: int) -> None:
    """What --coverage and --prior read (charclf.predict.conformal, charclf.predict.priors), when the file has it:
    sorted scores in [0, 1], and a whole count of training names per label."""
    stored = calibration.get("conformal")
    if stored is not None:
        scores = stored.get("scores") if isinstance(stored, dict) else None
        if not isinstance(scores, list) or not all(
                type(s) in (int, float) and 0 <= s <= 1 for s in scores) or scores != sorted(scores):
            raise CheckpointError("its label-set calibration is not a sorted list of scores from 0 to 1")
    counts = calibration.get("train_counts")
    if counts is not None and (not isinstance(counts, list) or len(counts) != n_labels
                               or not all(type(c) is int and 0 <= c < 2**53 for c in counts)):
        raise CheckpointError("its training label counts are not one whole number per label")


def _check_scripts(scripts: Any, labels: list[str]) -> None:
    """The learned P(script | label) table (charclf.predict.evidence), when the file has one: a table
    of the model's labels, each a table of script names and probabilities in [0, 1]."""
    table = scripts.get("probabilities", {}) if isinstance(scripts, dict) else None
    if not isinstance(table, dict) or not all(
            label in labels and isinstance(row, dict)
            and all(isinstance(s, str) and type(p) in (int, float) and 0 <= p <= 1 for s, p in row.items())
            for label, row in table.items()):
        raise CheckpointError("its script table is not a table of probabilities for its labels")


def _check_alphabet(alphabet: Any, n_letters: int, lowercase: bool) -> None:
    if not isinstance(alphabet, str) or len(alphabet) != n_letters:
        raise CheckpointError("its alphabet does not match its model config")
    if len(set(alphabet)) != len(alphabet):
        raise CheckpointError("its alphabet repeats letters (each letter must appear once)")
    if lowercase and not all(c.lower() in alphabet and len(c.lower()) == 1 for c in alphabet):
        raise CheckpointError("its model reads letters lower-cased, but its alphabet lacks the lower case of some")


def _check_labels(labels: Any, n_classes: int) -> None:
    if not isinstance(labels, list) or len(labels) != n_classes:
        raise CheckpointError("its labels do not match its model config")
    if any(label_problem(label) for label in labels):
        raise CheckpointError("its labels are not all non-empty, printable strings")
    if len(set(labels)) != len(labels):
        raise CheckpointError("its labels repeat (each label must appear once)")


def _check_temperature(calibration: Any) -> None:
    temperature = calibration.get("temperature", 1.0) if isinstance(calibration, dict) else None
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not (math.isfinite(temperature) and temperature > 0)):
        raise CheckpointError(f"its calibration temperature is not a positive number ({str(temperature)[:30]})")
    if not MIN_TEMPERATURE * (1 - 1e-6) <= temperature <= MAX_TEMPERATURE * (1 + 1e-6):  # exp(log(100)) > 100
        raise CheckpointError(f"its calibration temperature {temperature:g} is outside [{MIN_TEMPERATURE:g}, "
                              f"{MAX_TEMPERATURE:g}], where charclf fits it")


def short(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
