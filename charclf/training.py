"""Training: batches of packed names, AdamW with a one-cycle schedule, best-on-validation checkpoints."""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from charclf.checkpoint import Checkpoint, atomic_write, ensure_writable, save_checkpoint
from charclf.config import ModelConfig, TrainConfig
from charclf.data import letter_indices, load_dataset, pack_batch, split_dataset
from charclf.errors import CharclfError
from charclf.metrics import report
from charclf.model import NameClassifier, batched_logits, count_parameters, pick_device
from charclf.text import DEFAULT_ALPHABET


class TrainingDiverged(CharclfError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def class_weights(targets: list[int], n_classes: int, mode: str) -> torch.Tensor | None:
    """Weights proportional to count^-1 ('inverse') or count^-1/2 ('sqrt'), mean 1."""
    if mode == "none":
        return None
    counts = Counter(targets)
    power = 1.0 if mode == "inverse" else 0.5
    w = torch.tensor([max(counts.get(c, 0), 1) ** -power for c in range(n_classes)])
    return w * n_classes / w.sum()


def history_paths(checkpoint: Path) -> tuple[Path, Path]:
    """Where the metric history and its curves go: beside the checkpoint."""
    return checkpoint.with_suffix(".history.json"), checkpoint.with_suffix(".curves.png")


def train(
    data_dir: Path,
    out: Path,
    arch: str = "gru",
    model_options: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on a folder of <Label>.txt files; keep the best model on validation macro-F1 at `out`."""
    config = config or TrainConfig()
    out = Path(out)
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    device = device if isinstance(device, torch.device) else pick_device(device)
    ensure_writable(out)

    dataset = load_dataset(Path(data_dir), DEFAULT_ALPHABET)
    splits = split_dataset(dataset, seed=config.seed)
    model_config = ModelConfig(
        arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=len(dataset.labels), **(model_options or {})
    )
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = NameClassifier(model_config).to(device)

    train_x = [letter_indices(name, DEFAULT_ALPHABET) for name, _ in splits["train"]]
    train_y = torch.tensor([label for _, label in splits["train"]])
    val_x = [letter_indices(name, DEFAULT_ALPHABET) for name, _ in splits["val"]]
    val_y = [label for _, label in splits["val"]]

    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    weights = class_weights(train_y.tolist(), model_config.n_classes, config.class_weighting)
    loss_fn = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(device), label_smoothing=config.label_smoothing
    )

    train_info = {
        **asdict(config),
        "arch": arch,
        "data_dir": str(Path(data_dir).resolve()),
        "data_fingerprint": dataset.fingerprint,
        "split_sizes": {name: len(pairs) for name, pairs in splits.items()},
        "device": str(device),
        "torch": str(torch.__version__),  # TorchVersion is not a plain str
    }
    log(
        f"training {arch} ({count_parameters(model):,} parameters) on {device}: "
        f"{len(dataset.labels)} labels, {len(splits['train'])} train / {len(splits['val'])} val / "
        f"{len(splits['test'])} test pairs"
    )

    history: list[dict[str, float]] = []
    best: dict[str, Any] | None = None
    started = time.perf_counter()
    epochs = tqdm(range(1, config.epochs + 1), desc="epochs", unit="epoch", disable=not progress, file=sys.stderr)
    for epoch in epochs:
        model.train()
        order = torch.randperm(len(train_x), generator=generator).tolist()
        total_loss = 0.0
        batches = tqdm(
            range(0, len(order), config.batch_size), desc=f"epoch {epoch}", leave=False,
            disable=not progress, file=sys.stderr, unit="batch",
        )
        for start in batches:
            chunk = order[start : start + config.batch_size]
            packed = pack_batch([train_x[i] for i in chunk], model_config.n_letters).to(device)
            loss = loss_fn(model(packed), train_y[chunk].to(device))
            if not torch.isfinite(loss):
                kept = f"the best checkpoint so far is kept at {out}" if best else "nothing was saved"
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch} (loss is {loss.item()}); {kept}; try a smaller --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(chunk)
            batches.set_postfix(loss=f"{loss.item():.3f}")

        val_logits = batched_logits(model, val_x, device)
        val = report(val_y, val_logits.argmax(1).tolist(), dataset.labels)
        row = {
            "epoch": epoch,
            "train_loss": total_loss / len(train_x),
            "val_loss": nn.functional.cross_entropy(val_logits, torch.tensor(val_y)).item(),
            "val_accuracy": val["accuracy"],
            "val_macro_f1": val["macro_f1"],
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        improved = best is None or (val["macro_f1"], val["accuracy"]) > (best["val_macro_f1"], best["val_accuracy"])
        if improved and all(torch.isfinite(p).all() for p in model.parameters()):
            best = dict(row)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            save_checkpoint(out, Checkpoint(model_config, DEFAULT_ALPHABET, dataset.labels, best_state,
                                            train_info, {"best_epoch": epoch, "val": _summary(val)}))
        epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
        log(
            f"epoch {epoch:>3}/{config.epochs}  loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
            f"val acc {val['accuracy']:.4f}  val macro-F1 {val['macro_f1']:.4f}"
            + ("  *best" if improved else "")
        )
    seconds = time.perf_counter() - started
    if best is None:
        raise TrainingDiverged(f"no epoch produced finite weights; nothing was saved at {out}")

    # Final metrics of the kept (best) model, on the held-out splits.
    model.load_state_dict(best_state)
    metrics = {"best_epoch": best["epoch"], "train_seconds": seconds, "parameters": count_parameters(model)}
    for split in ("val", "test"):
        xs = [letter_indices(name, DEFAULT_ALPHABET) for name, _ in splits[split]]
        ys = [label for _, label in splits[split]]
        metrics[split] = _summary(report(ys, batched_logits(model, xs, device).argmax(1).tolist(), dataset.labels))
    majority = Counter(train_y.tolist()).most_common(1)[0][0]
    test_y = [label for _, label in splits["test"]]
    metrics["test_majority_baseline"] = {
        "label": dataset.labels[majority],
        "accuracy": sum(y == majority for y in test_y) / len(test_y),
    }
    save_checkpoint(out, Checkpoint(model_config, DEFAULT_ALPHABET, dataset.labels, best_state, train_info, metrics))
    write_history(out, history)
    return TrainResult(checkpoint=out, metrics=metrics, history=history)


def _summary(result: dict) -> dict[str, float]:
    return {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], "n": result["n"]}


def write_history(checkpoint: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as JSON, and their loss/accuracy curves as a PNG, beside the checkpoint."""
    from charclf.plots import plot_history

    json_path, png_path = history_paths(checkpoint)
    atomic_write(json_path, lambda f: f.write(json.dumps(history, indent=2).encode()))
    plot_history(history, png_path)
