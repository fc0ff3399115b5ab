#!/usr/bin/env python
"""Train the pretrained model that ships inside the package: charclf/pretrained/model.pt and its
export model.onnx.

It is `charclf train --preset best` (charclf.training.recipes.train_best: one default network that
learnt from an ensemble of five, about 15 minutes on 2 cores) with split seed 0 on the real names
dataset, so that right after `pip install`, with no dataset and no training, `charclf predict
Jones` answers. Its test metrics are printed for docs/accuracy-and-speed.md.

    python scripts/train_shipped_model.py [--data DIR] [--seed 0] [--preset best]
    python scripts/train_shipped_model.py --extra-names mimesis --extra-weight 0.3 --extra-cap 500
    python scripts/train_shipped_model.py --from runs/best-seed0.pt   # ship a model already trained
    python scripts/train_shipped_model.py --recalibrate [--data DIR]

--extra-names (and its options, as `charclf train`'s) mixes extra training names in (charclf.data.extra).
--from ships a checkpoint trained elsewhere (the benchmark's own seed-0 model: scripts/benchmark.py
accuracy --keep-models DIR). --recalibrate keeps the shipped weights and recomputes what is
derived from them on its split (test metrics, temperature, conformal label sets, training label
counts), for a charclf whose checkpoints record more than the one that trained them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

import charclf
from charclf.config import PRESETS
from charclf.data.batches import open_source
from charclf.data.extra import ExtraSpec
from charclf.files.checkpoint import load_checkpoint, save_checkpoint
from charclf.files.export import export_file, onnx_beside
from charclf.training.train import final_metrics

TARGET = Path(charclf.__file__).parent / "pretrained" / "model.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", "data/names")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=PRESETS, default="best", help="the recipe (default: best)")
    parser.add_argument("--from", dest="source", type=Path, help="ship this checkpoint instead of training one")
    parser.add_argument("--recalibrate", action="store_true", help="Keep the weights; recompute the rest.")
    parser.add_argument("--extra-names", help="extra training names: mimesis, or a folder of <Label>.txt files")
    parser.add_argument("--extra-weight", type=float, help="how much an extra name weighs (default: TrainConfig's)")
    parser.add_argument("--extra-cap", type=int, help="most extra names per label (default: TrainConfig's)")
    parser.add_argument("--extra-ratio", type=float, help="most extra names per label / its training names")
    args = parser.parse_args()
    extra = {key: value for key, value in vars(args).items() if key.startswith("extra_") and value is not None}

    if args.recalibrate:
        checkpoint = recalibrated(load_checkpoint(TARGET), args.data)
    elif args.source:
        checkpoint = load_checkpoint(args.source)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = load_checkpoint(trained(args.data, Path(tmp) / "model.pt", args.seed, args.preset, extra))
    # Keep this machine's paths out of the shipped file.
    checkpoint.train_config["data_dir"] = "data/names"
    TARGET.parent.mkdir(exist_ok=True)
    save_checkpoint(TARGET, checkpoint)
    export_file(TARGET, onnx_beside(TARGET))  # after the save: the export records the .pt's sha256
    report(checkpoint)


def trained(data: Path, out: Path, seed: int, preset: str, extra: dict) -> Path:
    """A model trained by the recipe `preset` on split seed `seed`, with the extra names' options
    `extra` -> its checkpoint (at `out`)."""
    if preset == "best":
        from charclf.training.recipes import train_best

        return train_best(data, out, seed=seed, progress=True, log=print, extra=extra).checkpoint
    return charclf.train(data, out, config=charclf.TrainConfig(seed=seed, **extra)).checkpoint


def report(checkpoint) -> None:
    """What the shipped model scored, for the docs."""
    m = checkpoint.metrics
    print(f"wrote {os.path.relpath(TARGET)} ({TARGET.stat().st_size / 1e6:.2f} MB) and {onnx_beside(TARGET).name}: "
          f"{checkpoint.model_config.arch}, recipe {m.get('recipe', {}).get('name', 'default')}, best epoch "
          f"{m['best_epoch']}, {m['train_seconds']:.1f} s of training (the student)")
    print(f"test accuracy {m['test']['accuracy']:.4f}, macro-F1 {m['test']['macro_f1']:.4f} "
          f"({m['test']['n']} pairs; always-{m['test_majority_baseline']['label']} "
          f"{m['test_majority_baseline']['accuracy']:.4f}), seed {checkpoint.train_config['seed']}")
    c = m["calibration"]
    if "offdist" in m:
        print(f"off-distribution accuracy {m['offdist']['accuracy']:.4f}, macro-F1 {m['offdist']['macro_f1']:.4f} "
              f"({m['offdist']['n']} names of {checkpoint.train_config['extra_names']} never trained on)")
    print(f"temperature {c['temperature']:.4f} (fit on validation): test ECE {c['test_before']['ece']:.4f} -> "
          f"{c['test_after']['ece']:.4f}, Brier {c['test_before']['brier']:.4f} -> {c['test_after']['brier']:.4f}")


def recalibrated(checkpoint, data: Path):
    """The checkpoint with its metrics and calibration recomputed on its own split of `data`."""
    if "refit" in checkpoint.metrics:  # its temperature and label sets are the first run's (charclf.training.refit)
        raise SystemExit("the shipped model is a refit on train + validation: its validation scores, temperature "
                         "and label sets came from the run trained on train alone, which is not kept; retrain instead")
    source = open_source(data, checkpoint.alphabet, checkpoint.train_config.get("seed", 0), ("val", "test"),
                         ExtraSpec.of(checkpoint.train_config))
    if source.fingerprint != checkpoint.train_config.get("data_fingerprint"):
        raise SystemExit(f"{data} is not the dataset the shipped model was trained on")
    metrics, calibration = final_metrics(checkpoint.build_model(), source, torch.device("cpu"))
    kept = {key: checkpoint.metrics[key] for key in ("best_epoch", "epochs_run", "train_seconds")
            if key in checkpoint.metrics}
    checkpoint.metrics, checkpoint.calibration = {**kept, **metrics}, calibration
    return checkpoint


if __name__ == "__main__":
    main()
