#!/usr/bin/env python
"""Train the pretrained model that ships inside the package: charclf/pretrained/model.pt.

It is charclf's default model (`charclf.train` with every default, split seed 0) trained on the
real names dataset, so that right after `pip install`, with no dataset and no training,
`charclf predict Jones` answers. Its test metrics are printed for docs/accuracy-and-speed.md.

    python scripts/train_shipped_model.py [--data DIR] [--seed 0]
    python scripts/train_shipped_model.py --recalibrate [--data DIR]

--recalibrate keeps the shipped weights and recomputes what is derived from them on its split
(test metrics, temperature, conformal label sets, training label counts), for a charclf whose
checkpoints record more than the one that trained them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

import charclf
from charclf.data.batches import open_source
from charclf.files.checkpoint import load_checkpoint, save_checkpoint
from charclf.training.train import final_metrics

TARGET = Path(charclf.__file__).parent / "pretrained" / "model.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", "data/names")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recalibrate", action="store_true", help="Keep the weights; recompute the rest.")
    args = parser.parse_args()

    if args.recalibrate:
        checkpoint = recalibrated(load_checkpoint(TARGET), args.data)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = charclf.train(args.data, Path(tmp) / "model.pt", config=charclf.TrainConfig(seed=args.seed))
            checkpoint = load_checkpoint(result.checkpoint)
    # Keep this machine's paths out of the shipped file.
    checkpoint.train_config["data_dir"] = "data/names"
    TARGET.parent.mkdir(exist_ok=True)
    save_checkpoint(TARGET, checkpoint)
    m = checkpoint.metrics
    print(f"wrote {TARGET} ({TARGET.stat().st_size / 1e6:.2f} MB): {checkpoint.model_config.arch}, "
          f"best epoch {m['best_epoch']}, {m['train_seconds']:.1f} s of training")
    print(f"test accuracy {m['test']['accuracy']:.4f}, macro-F1 {m['test']['macro_f1']:.4f} "
          f"({m['test']['n']} pairs; always-{m['test_majority_baseline']['label']} "
          f"{m['test_majority_baseline']['accuracy']:.4f}), seed {checkpoint.train_config['seed']}")
    c = m["calibration"]
    print(f"temperature {c['temperature']:.4f} (fit on validation): test ECE {c['test_before']['ece']:.4f} -> "
          f"{c['test_after']['ece']:.4f}, Brier {c['test_before']['brier']:.4f} -> {c['test_after']['brier']:.4f}")


def recalibrated(checkpoint, data: Path):
    """The checkpoint with its metrics and calibration recomputed on its own split of `data`."""
    if "refit" in checkpoint.metrics:  # its temperature and label sets are the first run's (charclf.training.refit)
        raise SystemExit("the shipped model is a refit on train + validation: its validation scores, temperature "
                         "and label sets came from the run trained on train alone, which is not kept; retrain instead")
    source = open_source(data, checkpoint.alphabet, checkpoint.train_config.get("seed", 0), ("val", "test"))
    if source.fingerprint != checkpoint.train_config.get("data_fingerprint"):
        raise SystemExit(f"{data} is not the dataset the shipped model was trained on")
    metrics, calibration = final_metrics(checkpoint.build_model(), source, torch.device("cpu"))
    kept = {key: checkpoint.metrics[key] for key in ("best_epoch", "epochs_run", "train_seconds") if key in checkpoint.metrics}
    checkpoint.metrics, checkpoint.calibration = {**kept, **metrics}, calibration
    return checkpoint


if __name__ == "__main__":
    main()
