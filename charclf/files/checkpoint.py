"""One self-sufficient checkpoint file: saved atomically, loaded without executing code."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from charclf.errors import CheckpointError
from charclf.files.archive import open_regular, outline, torch_load
from charclf.files.atomic import atomic_write
from charclf.files.description import ModelDescription
from charclf.files.validation import check_payload, check_weights
from charclf.models.build import build_model


@dataclass
class Checkpoint(ModelDescription):
    """Everything `predict` needs, in plain types (so `weights_only=True` can load it): the model's
    description and its weights."""

    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def description(self) -> ModelDescription:
        """All of it but the weights (what an exported .onnx file carries in its metadata)."""
        return ModelDescription(**{f.name: getattr(self, f.name) for f in fields(ModelDescription)})

    def build_model(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise CheckpointError(f"its weights do not fit its model config ({reason})") from None
        return model.to(device).eval()


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    payload = {**checkpoint.as_payload(),
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
    return Checkpoint(**{f.name: getattr(checked, f.name) for f in fields(ModelDescription)},
                      state_dict=payload["model"])


def _named(path: Path, check, *args):
    try:
        return check(*args)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
