"""A training run's progress, and the file that lets an interrupted run resume exactly where it
stopped: written beside the checkpoint after every epoch, deleted when the run completes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from charclf.errors import CheckpointError
from charclf.files.archive import open_regular, outline, torch_load
from charclf.files.atomic import atomic_write

STATE_FORMAT = 2


@dataclass
class Progress:
    """Epochs done, their history rows, the best epoch so far and its weights, seconds spent."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None  # the history row of the best epoch
    best_weights: dict[str, torch.Tensor] | None = None
    seconds: float = 0.0

    def record(self, row: dict[str, float], weights: dict[str, torch.Tensor]) -> bool:
        """Add an epoch's row; keep its weights if it is the best so far (validation accuracy
        first, macro-F1 breaking ties: docs/tuning.md). True when it is."""
        self.epoch = row["epoch"]
        self.history.append(row)
        improved = self.best is None or (row["val_accuracy"], row["val_macro_f1"]) > (
            self.best["val_accuracy"], self.best["val_macro_f1"])
        if improved:
            self.best = row
            self.best_weights = {k: v.detach().cpu().clone() for k, v in weights.items()}
        return improved


def state_path(checkpoint: Path) -> Path:
    """The resumable training state (last epoch, optimizer, RNG), beside the checkpoint."""
    return Path(checkpoint).with_suffix(".state.pt")


def rng_states(device: torch.device, per_rank: bool) -> tuple[torch.Tensor, Any]:
    """(CPU RNG state, CUDA RNG state(s): this rank's device under torchrun, else all; [] on CPU)."""
    if device.type != "cuda":
        return torch.get_rng_state(), []
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if per_rank else torch.cuda.get_rng_state_all())


def set_rng_states(states: tuple[torch.Tensor, Any], device: torch.device, per_rank: bool) -> None:
    torch_rng, cuda_rng = states
    torch.set_rng_state(torch_rng)
    if cuda_rng and device.type == "cuda":
        if per_rank:
            torch.cuda.set_rng_state(cuda_rng, device)
        else:
            torch.cuda.set_rng_state_all(cuda_rng)


def save_state(checkpoint: Path, state: dict[str, Any]) -> None:
    path = state_path(checkpoint)
    try:
        atomic_write(path, lambda f: torch.save({"format": STATE_FORMAT, **state}, f))
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def load_state(checkpoint: Path) -> dict[str, Any]:
    path = state_path(checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"no training state to resume at {path} (the run finished, or never completed an epoch); "
            "train without --resume to start anew"
        )
    with open_regular(path) as file:  # the same checks as a checkpoint's: sizes, no code, one line
        outline(file, path)
        state = torch_load(file, path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a charclf training state of format {STATE_FORMAT}")
    return state
