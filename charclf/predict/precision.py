"""The arithmetic prediction runs in: float32 (the default), or bfloat16 matrix products.

A CPU with bfloat16 dot-product instructions (AVX512-BF16, AMX) multiplies bfloat16 matrices about
twice as fast as float32 ones, and the recurrent layer's products are most of a prediction's cost.
"bfloat16" runs prediction under torch.autocast: the products (recurrent, projections, heads) in
bfloat16, the recurrent state, the sums over letters and the softmax in float32 (the model casts
its scores back before adding them up). Measured (docs/accuracy-and-speed.md, "Precision"): the same test accuracy,
1.4-1.6x the names per second of `predict --file`, and probabilities that differ from float32's
in the third decimal.

float32 stays the default: its answers are the same on every machine, in the exported ONNX model
and in the recorded scores. "auto" picks bfloat16 on a CPU that has the instructions and float32
everywhere else (other CPUs would emulate bfloat16, slower; a GPU is fast enough in float32).
Training is always float32.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

PRECISIONS = ("float32", "bfloat16", "auto")
ENV = "CHARCLF_PRECISION"


def native_bfloat16() -> bool:
    """True when this CPU has bfloat16 dot-product instructions (torch's own check)."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def precision_name(given: str | None) -> str:
    """`given`, else $CHARCLF_PRECISION, else "float32"; one of PRECISIONS (else a ValueError)."""
    name = (given or os.environ.get(ENV, "").strip() or "float32").lower()
    if name not in PRECISIONS:
        source = "precision" if given else f"${ENV}"
        raise ValueError(f"{source} must be one of {', '.join(PRECISIONS)}; got {name!r}")
    return name


def pick_precision(given: str | None, device) -> str:
    """The precision prediction on `device` runs in: "float32" or "bfloat16" (see the module's text)."""
    name = precision_name(given)
    if name != "auto":
        return name
    return "bfloat16" if device.type == "cpu" and native_bfloat16() else "float32"


def autocast(precision: str, device):
    """A context to run a forward pass in `precision` on `device` (nothing to do for float32)."""
    if precision == "float32":
        return nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)
