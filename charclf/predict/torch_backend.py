"""The torch backend: a .pt checkpoint's network, run by torch on the CPU or a GPU, in float32 or
bfloat16 (charclf.predict.precision). What training, resuming and exporting read; prediction uses it
when asked to (`--backend torch`, a GPU, bfloat16) or when no current .onnx export is beside the .pt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from charclf.config import NGRAM
from charclf.errors import CheckpointError, DeviceError
from charclf.files.checkpoint import Checkpoint, load_checkpoint
from charclf.models.model import pick_device
from charclf.predict.inference import batched_logits
from charclf.predict.precision import native_bfloat16, pick_precision

NAME = "torch"


class TorchBackend:
    """Folded names -> logits, from a checkpoint's network."""

    name = NAME

    def __init__(self, checkpoint: Checkpoint, device: torch.device | str = "auto", precision: str | None = None,
                 path: Path | None = None):
        self.checkpoint = checkpoint
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        # The n-gram baseline has no products to speed up: always float32.
        self.precision = pick_precision(precision, self.device) if checkpoint.model_config.arch != NGRAM else "float32"
        if (self.precision == "bfloat16" and self.device.type == "cpu" and checkpoint.model_config.arch == "lstm"
                and not native_bfloat16()):  # oneDNN has no emulated bfloat16 LSTM: it fails at the first batch
            raise DeviceError("bfloat16 for an LSTM needs a CPU with bfloat16 instructions (AVX512-BF16 or AMX), "
                              "which this one lacks: use --precision float32")
        try:
            self.model = checkpoint.build_model(self.device)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}" if path else str(e)) from None

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "auto", precision: str | None = None) -> "TorchBackend":
        return cls(load_checkpoint(path), device, precision, path)

    def logits(self, folded: list[str]) -> np.ndarray:
        """Already-folded, non-empty names -> (N, n_classes) float32 logits, in input order."""
        return batched_logits(self.model, folded, self.checkpoint.alphabet, self.device, precision=self.precision).numpy()

    def describe(self) -> str:
        return f"torch on {self.device} in {self.precision}"
