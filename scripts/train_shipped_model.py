#!/usr/bin/env python
"""Train the pretrained model that ships inside the package: charclf/pretrained/model.pt.

It is charclf's default model (`charclf.train` with every default, split seed 0) trained on the
real names dataset, so that right after `pip install`, with no dataset and no training,
`charclf predict Jones` answers. Its test metrics are printed for the README.

    python scripts/train_shipped_model.py [--data DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import charclf
from charclf.checkpoint import load_checkpoint, save_checkpoint

TARGET = Path(charclf.__file__).parent / "pretrained" / "model.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA", "data/names")))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
