"""Figures: training curves and the confusion matrix, drawn off-screen and saved as PNG (or as
the picture format the path's extension names: charclf.files.outputs.PICTURES)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure  # the object API needs no GUI backend
from matplotlib.ticker import MaxNLocator

from charclf.files.atomic import atomic_write
from charclf.files.outputs import PICTURES
from charclf.report.metrics import normalize_rows


def _save(fig: Figure, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fmt = PICTURES.get(Path(path).suffix.lower(), "png")
    atomic_write(Path(path), lambda f: fig.savefig(f, format=fmt, dpi=150, bbox_inches="tight"))


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """One model's losses on the left (the weights as stepped: training loss, with its dropout,
    label smoothing and class weights, and validation loss; dotted, the averaged weights that
    are kept); their validation accuracy and macro-F1 on the right."""
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 4))
    loss_ax, score_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["train_loss"] for r in history], marker="o",
                 label="training loss (with dropout, label smoothing)")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation loss")
    if all("val_loss_kept" in r for r in history):
        loss_ax.plot(epochs, [r["val_loss_kept"] for r in history], linestyle=":", marker=".",
                     label="validation loss, averaged weights (kept)")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss (the weights as trained)")
    score_ax.plot(epochs, [r["val_accuracy"] for r in history], marker="o", label="validation accuracy (kept weights)")
    score_ax.plot(epochs, [r["val_macro_f1"] for r in history], marker="o", label="validation macro-F1 (kept weights)")
    score_ax.set(xlabel="epoch", ylabel="score", title="Validation", ylim=(0, 1))
    for ax in (loss_ax, score_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_comparison(histories: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Validation accuracy (left) and macro-F1 (right) per epoch, one line per backbone; a model
    fitted in one go (the n-gram baseline: one history row) is a dashed level line."""
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    longest = max((len(h) for h in histories.values()), default=1)
    for ax, key, title in zip(axes, ("val_accuracy", "val_macro_f1"), ("Validation accuracy", "Validation macro-F1")):
        for arch, history in histories.items():
            if len(history) == 1 and longest > 1:
                ax.axhline(history[0][key], linestyle="--", color="grey", label=f"{arch} (fitted once)")
                continue
            ax.plot([r["epoch"] for r in history], [r[key] for r in history], marker=".", label=arch)
        ax.set(xlabel="epoch", title=title, ylim=(0, 1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_seeds(rows: list[dict], path: Path, title: str) -> None:
    """Test accuracy and macro-F1 per row (a model or a rung, in order), each the mean over the
    split seeds with a bar from the lowest seed to the highest, and every seed's own score as a dot."""
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(rows)), 4.5))
    ax = fig.subplots()
    places = range(len(rows))
    for key, label, shift in (("test_accuracy", "test accuracy", -0.12), ("test_macro_f1", "test macro-F1", 0.12)):
        means = [r[key]["mean"] for r in rows]
        below = [r[key]["mean"] - r[key]["min"] for r in rows]
        above = [r[key]["max"] - r[key]["mean"] for r in rows]
        shown = ax.errorbar([i + shift for i in places], means, yerr=[below, above], fmt="o-", capsize=4, label=label)
        for i, r in enumerate(rows):
            ax.plot([i + shift] * len(r[key]["seeds"]), r[key]["seeds"], ".", color=shown.lines[0].get_color(),
                    alpha=0.4)
    ax.set_xticks(list(places), [r["name"] for r in rows], rotation=30, ha="right")
    ax.set(ylabel="on the test split", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def confusion_figure(matrix: list[list[int]], labels: Sequence[str], title: str) -> Figure:
    """Rows (true labels) normalised to 1, every label on both axes, a colour bar."""
    rows = normalize_rows(matrix)
    size = max(6.0, 0.45 * len(labels) + 2)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's names")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set(xlabel="predicted label", ylabel="true label", title=title)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value >= 0.005:
                ax.text(j, i, f"{value:.2f}"[1:] if value < 1 else "1", ha="center", va="center",
                        fontsize=6, color="white" if value > 0.5 else "black")
    fig.tight_layout()
    return fig


def save_confusion(matrix: list[list[int]], labels: Sequence[str], path: Path, title: str) -> None:
    _save(confusion_figure(matrix, labels, title), path)


def plain_text():
    """A context in which the figures made draw their text as given: a $ in a name is a dollar
    sign, never the start of matplotlib's mathtext (which fails on an unmatched one)."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False})


def display_available() -> bool:
    """A screen to show a window on: macOS or Windows, or an X11/Wayland session."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def show_png(path: Path) -> None:
    """Open a saved PNG in a matplotlib window (blocks until it is closed)."""
    import matplotlib.pyplot as plt

    image = plt.imread(str(path))
    fig = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.axis("off")
    plt.show()


def save_reliability(before: list[dict], after: list[dict], path: Path, title: str) -> None:
    """Reliability diagram: per confidence bin, the accuracy (bar) and the mean confidence (red mark
    on the diagonal), raw softmax on the left and calibrated on the right; a bar's gap to its
    mark is that bin's calibration error. Bins come from calibration.reliability()."""
    fig = Figure(figsize=(11, 5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, bins, name in zip(axes, (before, after), ("raw softmax", "calibrated (temperature)")):
        filled = [b for b in bins if b["count"]]
        width = bins[0]["high"] - bins[0]["low"]
        ax.bar([b["low"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
               edgecolor="black", color="tab:blue", alpha=0.8, label="accuracy in the bin")
        ax.scatter([b["confidence"] for b in filled], [b["confidence"] for b in filled], color="tab:red",
                   marker="_", s=200, zorder=3, label="mean confidence in the bin")
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
        n = sum(b["count"] for b in bins)
        ece = sum(abs(b["accuracy"] - b["confidence"]) * b["count"] for b in filled) / n if n else 0.0
        ax.set(xlabel="confidence (top probability)", title=f"{name}: ECE {ece:.4f}", xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    axes[0].set_ylabel("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def save_coverage(curve: list[dict], path: Path, title: str, marked: dict | None = None) -> None:
    """Accuracy on the names answered against coverage (share answered), one point per threshold
    from calibration.coverage_curve(); `marked` (a calibration.selective() result) is highlighted."""
    points = [c for c in curve if c["answered"]]
    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    ax.plot([c["coverage"] for c in points], [c["selective_accuracy"] for c in points], marker=".",
            label="min confidence 0 -> 1")
    if marked and marked["answered"]:
        ax.scatter([marked["coverage"]], [marked["selective_accuracy"]], color="tab:red", zorder=3,
                   label=f"min confidence {marked['min_confidence']:g}: coverage {marked['coverage']:.2f}, "
                         f"accuracy {marked['selective_accuracy']:.3f}")
    ax.set(xlabel="coverage (share of names answered)", ylabel="accuracy on the names answered",
           title=title, xlim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    _save(fig, path)
