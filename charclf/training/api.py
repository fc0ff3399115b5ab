"""charclf.train, the Python door to training: it takes what `charclf train` takes, and settles it
as the command does (charclf.cli.train): the dataset from $CHARCLF_DATA when none is given, the
backbone's defaults with only the settings a caller chose over them, and nothing left behind when
it fails before it has trained."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from charclf.config import TrainConfig, defaults_for


def train(data_dir=None, out=None, arch: str = "gru", model_options: dict[str, Any] | None = None,
          config: TrainConfig | None = None, device: str = "auto", progress: bool = True,
          log: Callable[[str], None] | None = None, force: bool = False, **options):
    """Train a model as `charclf train` does and return its TrainResult (needs the train extra: torch).

    `data_dir`: a folder of <Label>.txt files or a CSV/TSV file; None: $CHARCLF_DATA, else
    ./data/names. `out`: the checkpoint to write; None: the default model, which charclf.load()
    and `charclf predict` then answer with. `arch`: gru, lstm, rnn, or ngram (the baseline).
    Settings come from the backbone's defaults (the LSTM's lr is 0.004, say), overridden by
    `options` given by keyword (epochs=5, hidden_size=64, lr=0.01: `charclf train`'s options), by
    `model_options`, and by the fields of `config` set to anything but TrainConfig()'s default
    (a field left at its default keeps the backbone's). Folders made for `out` are removed again
    when the run fails and leaves them empty."""
    from charclf.files.locations import default_checkpoint, resolve_data_dir
    from charclf.training.train import train as run

    data_dir = resolve_data_dir(data_dir)  # as the CLI: --data, else $CHARCLF_DATA, else ./data/names
    out = Path(out) if out is not None else default_checkpoint()
    model_settings, train_config = defaults_for(arch, **{**changed_fields(config), **(model_options or {}), **options})
    made = missing_folders(out)
    try:
        return run(data_dir, out, arch=arch, model_options=model_settings, config=train_config, device=device,
                   progress=progress, log=log, force=force)
    except BaseException:
        for folder in made:  # deepest first; a folder the run wrote into is kept
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def changed_fields(config: TrainConfig | None) -> dict[str, Any]:
    """The fields of `config` that differ from TrainConfig()'s defaults."""
    if config is None:
        return {}
    return {f.name: getattr(config, f.name) for f in fields(TrainConfig) if getattr(config, f.name) != f.default}


def missing_folders(out: Path) -> list[Path]:
    """The folders above `out` that do not exist yet, deepest first."""
    missing = []
    folder = Path(os.path.abspath(out)).parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing
