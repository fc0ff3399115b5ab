"""What a checkpoint's payload must hold before charclf uses it. Checked in two steps:
`check_payload` on archive.outline's stand-ins (structure, config, alphabet, labels, temperature,
every weight's shape against the model its config describes, built on torch's meta device so
nothing is allocated), before a byte of the weights is read; then `check_weights` on the loaded
tensors (dense and finite). Each problem is a one-line CheckpointError."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from charclf.config import MAX_SEED, NGRAM, ModelConfig, saved_model_config
from charclf.errors import CheckpointError
from charclf.files.archive import MAX_TENSOR_BYTES
from charclf.models.model import weight_shapes

FORMAT = 2  # 2: purely recurrent models (mean+max pooling, lower-cased letters) or the n-gram baseline
REQUIRED = ("format", "model", "model_config", "alphabet", "labels", "train_config", "metrics")
# fit_temperature searches [1/100, 100]; anything outside was not fitted by charclf.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0


@dataclass
class Checked:
    """The parts of a payload that passed, ready to build a Checkpoint from."""

    model_config: ModelConfig
    alphabet: str
    labels: list[str]
    calibration: dict[str, Any]


def check_payload(payload: Any) -> Checked:
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError("not a charclf checkpoint (no format version)")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"checkpoint format {str(payload['format'])[:20]} is not supported (this charclf reads "
                              f"{FORMAT}: retrain it with this version)")
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"not a complete charclf checkpoint (missing {', '.join(missing)})")
    if not isinstance(payload["model_config"], dict):
        raise CheckpointError("bad model config (not a table of settings)")
    try:
        config = saved_model_config(payload["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad model config ({_short(e)})") from None
    alphabet, labels = payload["alphabet"], payload["labels"]
    _check_alphabet(alphabet, config.n_letters)
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
    _check_scripts(payload.get("scripts", {}))
    _check_shapes(config, payload["model"])
    return Checked(config, alphabet, labels, calibration)


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
                               or not all(type(c) is int and c >= 0 for c in counts)):
        raise CheckpointError("its training label counts are not one whole number per label")


def _check_scripts(scripts: Any) -> None:
    """The learned P(script | label) table (charclf.predict.evidence), when the file has one."""
    table = scripts.get("probabilities", {}) if isinstance(scripts, dict) else None
    if not isinstance(table, dict) or not all(
            isinstance(row, dict) and all(type(p) in (int, float) and 0 <= p <= 1 for p in row.values())
            for row in table.values()):
        raise CheckpointError("its script table is not a table of probabilities")


def check_weights(weights: dict[str, Any]) -> None:
    """The loaded tensors: dense, and finite numbers (NaN or infinity would make every answer NaN)."""
    for key, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
            raise CheckpointError(f"its weight {key} is not a dense tensor")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"its weight {key} holds NaN or infinite numbers; refused")


def check_model_size(config: ModelConfig) -> None:
    """The model a config describes must fit in a checkpoint charclf loads (archive.MAX_TENSOR_BYTES)."""
    size = 4 * sum(math.prod(shape) for shape in weight_shapes(config).values())  # float32 (8 for int64 codes: small)
    if size > MAX_TENSOR_BYTES:
        raise CheckpointError(f"this model would have {size / 2**30:.1f} GiB of weights, more than the "
                              f"{MAX_TENSOR_BYTES / 2**30:g} GiB a charclf checkpoint may hold: make it smaller")


def _check_alphabet(alphabet: Any, n_letters: int) -> None:
    if not isinstance(alphabet, str) or len(alphabet) != n_letters:
        raise CheckpointError("its alphabet does not match its model config")
    if len(set(alphabet)) != len(alphabet):
        raise CheckpointError("its alphabet repeats letters (each letter must appear once)")


def _check_labels(labels: Any, n_classes: int) -> None:
    if not isinstance(labels, list) or len(labels) != n_classes:
        raise CheckpointError("its labels do not match its model config")
    if not all(isinstance(label, str) and label.strip() and label.isprintable() for label in labels):
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


def _check_shapes(config: ModelConfig, weights: Any) -> None:
    """Every weight the config's model has, of its shape, and no other (n-gram tables are stored
    sparsely: their shapes are checked when they are loaded into the model)."""
    if not isinstance(weights, dict) or not all(isinstance(key, str) for key in weights):
        raise CheckpointError("its weights are not a state_dict")
    check_model_size(config)
    if config.arch == NGRAM:
        return
    expected = weight_shapes(config)
    found = {key: tuple(getattr(t, "shape", ())) for key, t in weights.items()}
    if expected != found:
        wrong = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        key = wrong[0]
        raise CheckpointError(f"its weights do not fit its model config ({key}: "
                              f"{list(found[key]) if key in found else 'missing'}, expected "
                              f"{list(expected[key]) if key in expected else 'none'})")


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
