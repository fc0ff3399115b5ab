"""One self-sufficient checkpoint file: saved atomically, loaded without executing code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from charclf.config import ModelConfig
from charclf.errors import CheckpointError
from charclf.files.archive import open_regular, outline, torch_load
from charclf.files.atomic import atomic_write
from charclf.files.description import ModelDescription
from charclf.files.validation import check_payload, check_weights
from charclf.models.build import build_model


@dataclass
class Checkpoint:
    """Everything `predict` needs, in plain types (so `weights_only=True` can load it)."""

    model_config: ModelConfig
    alphabet: str
    labels: list[str]
    state_dict: dict[str, torch.Tensor]
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # {"temperature": T, "fit_on": "val", ...}: logits are divided by T before the softmax.
    # Optional in the file: a checkpoint without it is read with T = 1 (raw softmax).
    calibration: dict[str, Any] = field(default_factory=dict)
    # {"probabilities": {label: {script: P(script | label)}}, "counts": ...}, learned from the raw
    # training names (charclf.predict.evidence.learn). Optional in the file: absent, {} (no script table).
    scripts: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        return float(self.calibration.get("temperature", 1.0))

    @property
    def description(self) -> ModelDescription:
        """All of it but the weights (what an exported .onnx file carries in its metadata)."""
        return ModelDescription(self.model_config, self.alphabet, list(self.labels), self.train_config, self.metrics,
                                self.calibration, self.scripts)

    def build_model(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise CheckpointError(f"its weights do not fit its model config ({reason})") from None
        return model.to(device).eval()


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    payload = {**checkpoint.description.as_payload(),
               "model": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()}}
    try:
        atomic_write(Path(path), lambda f: torch.save(payload, f))
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path) -> Checkpoint:
    """Load and validate; any problem is a one-line CheckpointError naming the file. The file's
    structure, sizes and shapes are checked before its weights are read (charclf.files.archive,
    charclf.files.validation), and unpickling may only build tensors and plain containers."""
    path = Path(path)
    with open_regular(path) as file:
        checked = _named(path, check_payload, outline(file, path))
        payload = torch_load(file, path)
    _named(path, check_weights, payload["model"])
    return Checkpoint(checked.model_config, checked.alphabet, checked.labels, payload["model"], checked.train_config,
                      checked.metrics, checked.calibration, checked.scripts)


def _named(path: Path, check, *args):
    try:
        return check(*args)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
