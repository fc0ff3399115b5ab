"""What a checkpoint's payload must hold before charclf uses it. Checked in two steps:
`check_payload` on archive.outline's stand-ins (structure, config, alphabet, labels, temperature,
every weight's shape against the model its config describes, built on torch's meta device so
nothing is allocated), before a byte of the weights is read; then `check_weights` on the loaded
tensors (dense and finite). Each problem is a one-line CheckpointError."""

from __future__ import annotations

import math
from typing import Any

import torch

from charclf.config import NGRAM, ModelConfig
from charclf.errors import CheckpointError
from charclf.files.archive import MAX_TENSOR_BYTES
from charclf.files.description import ModelDescription, describe
from charclf.models.build import weight_shapes


def check_payload(payload: Any) -> ModelDescription:
    """A checkpoint's payload (its weights as archive.outline's stand-ins) -> its checked description,
    the weights' shapes included."""
    description = describe(payload)
    if "model" not in payload:
        raise CheckpointError("not a complete charclf checkpoint (missing model)")
    _check_shapes(description.model_config, payload["model"])
    return description


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

