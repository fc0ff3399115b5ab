"""`charclf compare`'s report: trained models side by side (table, JSON, curves), and each one's
test accuracy by name length (how each copes with short and with long names); or, trained on
several split seeds, each row's mean and spread over them (compare_seeds)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from charclf.data.batches import open_source
from charclf.files.atomic import atomic_write
from charclf.files.checkpoint import load_checkpoint
from charclf.models.model import pick_device
from charclf.predict.inference import batched_logits

# Name lengths (letters) grouped for the by-length table: (label, shortest, longest).
LENGTH_GROUPS = (("1-5", 1, 5), ("6-8", 6, 8), ("9-11", 9, 11), ("12+", 12, 10**9))


def accuracy_by_length(checkpoint: Path, data_dir: Path, device: str = "auto") -> dict[str, dict]:
    """Test accuracy of a saved model per name-length group: {group: {"n": ..., "accuracy": ...}}."""
    ck = load_checkpoint(checkpoint)
    device = pick_device(device)
    model = ck.build_model(device)
    source = open_source(data_dir, ck.alphabet, ck.train_config.get("seed", 0), held=("test",))
    names, targets = source.held["test"]
    predicted = batched_logits(model, names, ck.alphabet, device).argmax(1).tolist()
    groups = {}
    for label, low, high in LENGTH_GROUPS:
        hits = [p == t for name, p, t in zip(names, predicted, targets) if low <= len(name) <= high]
        groups[label] = {"n": len(hits), "accuracy": sum(hits) / len(hits) if hits else None}
    return groups


def compare_models(results: dict, data_dir: Path, out_dir: Path, device: str = "auto") -> list[str]:
    """Write compare.json and compare.png for {model: TrainResult}; return the table's lines."""
    from charclf.extras import available, install_hint

    rows = []
    for arch, r in results.items():
        rows.append({"arch": arch, "test_accuracy": r.metrics["test"]["accuracy"],
                     "test_macro_f1": r.metrics["test"]["macro_f1"], "parameters": r.metrics["parameters"],
                     "train_seconds": r.metrics["train_seconds"], "best_epoch": r.metrics["best_epoch"],
                     "epochs": r.metrics["epochs_run"], "checkpoint": str(r.checkpoint),
                     "test_accuracy_by_length": accuracy_by_length(r.checkpoint, data_dir, device)})
    atomic_write(out_dir / "compare.json", lambda f: f.write(json.dumps(rows, indent=2).encode()))
    plotted = available("matplotlib")
    if plotted:
        from charclf.report.plots import plot_comparison

        plot_comparison({arch: r.history for arch, r in results.items()}, out_dir / "compare.png")
    lines = [f"{'model':<6} {'test acc':>8} {'macro-F1':>8} {'parameters':>10} {'seconds':>8} {'best epoch':>10}"]
    for row in rows:
        lines.append(f"{row['arch']:<6} {row['test_accuracy']:>8.4f} {row['test_macro_f1']:>8.4f} "
                     f"{row['parameters']:>10,} {row['train_seconds']:>8.1f} "
                     f"{str(row['best_epoch']) + '/' + str(row['epochs']):>10}")
    counts = rows[0]["test_accuracy_by_length"]
    lines.append("")
    lines.append("test accuracy by name length (letters):")
    lines.append(f"{'model':<6} "
                 + " ".join(f"{g + ' (' + str(counts[g]['n']) + ')':>11}" for g, _, _ in LENGTH_GROUPS))
    for row in rows:
        cells = [row["test_accuracy_by_length"][g]["accuracy"] for g, _, _ in LENGTH_GROUPS]
        lines.append(f"{row['arch']:<6} " + " ".join(f"{'-' if c is None else format(c, '.4f'):>11}" for c in cells))
    curves = f"validation curves: {out_dir / 'compare.png'}" if plotted else f"no curves ({install_hint('matplotlib')})"
    lines.append(f"checkpoints and compare.json in {out_dir}; {curves}")
    return lines


def compare_seeds(entries: list, results: dict[str, list], out_dir: Path, title: str) -> list[str]:
    """Write compare.json and compare.png for {row name: [(seed, TrainResult, wall seconds)]} of the
    Entry list `entries` (charclf.training.ladder); return the table's lines: test accuracy and
    macro-F1 as the mean over the seeds and their sample standard deviation, parameters, seconds."""
    from charclf.extras import available, install_hint

    rows = []
    for entry in entries:
        runs = results[entry.name]
        rows.append({"name": entry.name, "arch": entry.arch, "says": entry.says, "options": entry.options,
                     "seeds": [seed for seed, _, _ in runs],
                     **{key: spread([r.metrics["test"][metric] for _, r, _ in runs])
                        for key, metric in (("test_accuracy", "accuracy"), ("test_macro_f1", "macro_f1"))},
                     "parameters": runs[0][1].metrics["parameters"],
                     "seconds": spread([seconds for _, _, seconds in runs]),
                     "checkpoints": [str(r.checkpoint) for _, r, _ in runs]})
    atomic_write(out_dir / "compare.json", lambda f: f.write(json.dumps(rows, indent=2).encode()))
    plotted = available("matplotlib")
    if plotted:
        from charclf.report.plots import plot_seeds

        plot_seeds(rows, out_dir / "compare.png", title)
    width = max(len(row["name"]) for row in rows)
    lines = [f"{'':<{width}}  {'test accuracy':>15}  {'test macro-F1':>15}  {'parameters':>10}  {'seconds':>7}  "
             f"split seeds {','.join(str(s) for s in rows[0]['seeds'])}: mean ± standard deviation"]
    for row in rows:
        lines.append(f"{row['name']:<{width}}  {shown(row['test_accuracy']):>15}  {shown(row['test_macro_f1']):>15}  "
                     f"{row['parameters']:>10,}  {row['seconds']['mean']:>7.0f}  {row['says']}")
    figure = f"figure: {out_dir / 'compare.png'}" if plotted else f"no figure ({install_hint('matplotlib')})"
    lines.append(f"checkpoints and compare.json in {out_dir}; {figure}")
    return lines


def spread(values: list[float]) -> dict:
    """Scores over seeds -> their mean, sample standard deviation (None for one seed), min, max."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "seeds": values}


def shown(scores: dict) -> str:
    """'0.8123 ± 0.0041' (one seed: '0.8123 ± -')."""
    return f"{scores['mean']:.4f} ± " + ("-" if scores["sd"] is None else f"{scores['sd']:.4f}")
