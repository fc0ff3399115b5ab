"""Where charclf looks for its dataset and keeps its default model (no torch here)."""

from __future__ import annotations

import os
from pathlib import Path

from charclf.errors import CheckpointError, DataError

DATA_ENV = "CHARCLF_DATA"
HOME_ENV = "CHARCLF_HOME"
DEFAULT_DATA = Path("data/names")


def resolve_data_dir(data: str | os.PathLike | None, fallback: str | None = None) -> Path:
    """`--data DIR` (or a CSV/TSV file), else $CHARCLF_DATA, else `fallback` (the folder or file a
    model was trained on) if it still exists, else ./data/names; the error says how to get the data."""
    if data is not None:
        path, origin = Path(data), "--data"
    elif os.environ.get(DATA_ENV):
        path, origin = Path(os.environ[DATA_ENV]), f"${DATA_ENV}"
    elif fallback and Path(fallback).exists():
        path, origin = Path(fallback), "the folder the model was trained on"
    else:
        path, origin = DEFAULT_DATA, "the default ./data/names"
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(
            f"no dataset folder at {path} (from {origin}): run `charclf data fetch` to download "
            f"the names dataset into ./data/names, or point --data or ${DATA_ENV} at a folder of "
            "<Label>.txt files or a CSV/TSV file of name,label rows"
        )
    return path


def home_dir() -> Path:
    """$CHARCLF_HOME, else the platform's place for a user's application data (platformdirs):
    $XDG_DATA_HOME/charclf or ~/.local/share/charclf on Linux, ~/Library/Application Support/charclf
    on macOS, %LOCALAPPDATA%\\charclf on Windows."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    import platformdirs

    return Path(platformdirs.user_data_dir("charclf", appauthor=False))


def default_checkpoint() -> Path:
    """The file `charclf train` writes when no --out is given."""
    return home_dir() / "model.pt"


def shipped_checkpoint() -> Path | None:
    """The pretrained model inside the package (see scripts/train_shipped_model.py), if present."""
    path = Path(__file__).parent.parent / "pretrained" / "model.pt"  # charclf/pretrained/
    return path if path.is_file() else None


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> Path:
    """`--checkpoint FILE`, else the model `charclf train` last wrote to its default place, else
    the pretrained model that ships with charclf."""
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.exists():  # anything else that exists is judged when loaded (archive.open_regular)
            raise CheckpointError(f"no checkpoint file at {path}")
        return path
    path = default_checkpoint()
    if path.is_file():
        return path
    shipped = shipped_checkpoint()
    if shipped is None:
        raise CheckpointError(
            f"no trained model at {path}: run `charclf train` first, or pass --checkpoint FILE"
        )
    return shipped
