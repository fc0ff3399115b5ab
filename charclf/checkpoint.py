"""One self-sufficient checkpoint file: saved atomically, loaded without executing code."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from charclf.config import ModelConfig
from charclf.errors import CheckpointError
from charclf.files import atomic_write
from charclf.model import build_model

FORMAT = 2  # 2: purely recurrent models (mean+max pooling, lower-cased letters) or the n-gram baseline
REQUIRED = ("format", "model", "model_config", "alphabet", "labels", "train_config", "metrics")


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
    # training names (charclf.evidence.learn). Optional in the file: absent, {} (no script table).
    scripts: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        return float(self.calibration.get("temperature", 1.0))

    def build_model(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise CheckpointError(f"its weights do not fit its model config ({reason})") from None
        return model.to(device).eval()


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    payload = {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "model_config": asdict(checkpoint.model_config),
        "alphabet": checkpoint.alphabet,
        "labels": list(checkpoint.labels),
        "train_config": checkpoint.train_config,
        "metrics": checkpoint.metrics,
        "calibration": checkpoint.calibration,
        "scripts": checkpoint.scripts,
    }
    try:
        atomic_write(Path(path), lambda f: torch.save(payload, f))
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path) -> Checkpoint:
    """Load and validate; any problem is a one-line CheckpointError naming the file."""
    path = Path(path)
    try:
        # weights_only: unpickling may only build tensors and plain containers, never run code.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    except Exception as e:  # torch raises many types for broken or hostile files
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].strip()
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it holds objects that would run code when loaded; refused"
        raise CheckpointError(f"{path} is not a readable charclf checkpoint: {reason[:200]}") from None
    try:
        return _from_payload(payload)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def _from_payload(payload: Any) -> Checkpoint:
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError("not a charclf checkpoint (no format version)")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"checkpoint format {payload['format']!r} is not supported (this charclf reads {FORMAT}: retrain it with this version)")
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"not a complete charclf checkpoint (missing {', '.join(missing)})")
    try:
        config = ModelConfig(**payload["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad model config ({e})") from None
    alphabet, labels = payload["alphabet"], payload["labels"]
    if not isinstance(alphabet, str) or len(alphabet) != config.n_letters:
        raise CheckpointError("its alphabet does not match its model config")
    if not isinstance(labels, list) or len(labels) != config.n_classes:
        raise CheckpointError("its labels do not match its model config")
    if not isinstance(payload["model"], dict):
        raise CheckpointError("its weights are not a state_dict")
    calibration = payload.get("calibration", {})
    temperature = calibration.get("temperature", 1.0) if isinstance(calibration, dict) else None
    if not isinstance(temperature, (int, float)) or not (math.isfinite(temperature) and temperature > 0):
        raise CheckpointError(f"its calibration temperature is not a positive number ({temperature!r})")
    scripts = payload.get("scripts", {})
    table = scripts.get("probabilities", {}) if isinstance(scripts, dict) else None
    if not isinstance(table, dict) or not all(
            isinstance(row, dict) and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in row.values())
            for row in table.values()):
        raise CheckpointError("its script table is not a table of probabilities")
    return Checkpoint(
        model_config=config,
        alphabet=alphabet,
        labels=labels,
        state_dict=payload["model"],
        train_config=payload["train_config"],
        metrics=payload["metrics"],
        calibration=calibration,
        scripts=scripts,
    )
