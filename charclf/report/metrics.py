"""Accuracy, per-label precision/recall/F1, confusion matrices, and their text tables (no torch)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], n_classes: int) -> list[list[int]]:
    """matrix[true][predicted] = count."""
    matrix = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(targets, predictions):
        matrix[t][p] += 1
    return matrix


def report(targets: Sequence[int], predictions: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (mean over all labels) and per-label precision/recall/F1/support."""
    n = len(labels)
    matrix = confusion_matrix(targets, predictions, n)
    total = len(targets)
    correct = sum(matrix[i][i] for i in range(n))
    per_label = {}
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(matrix[j][i] for j in range(n))
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {
        "n": total,
        "accuracy": correct / total if total else 0.0,
        "macro_f1": sum(v["f1"] for v in per_label.values()) / n if n else 0.0,
        "per_label": per_label,
        "confusion": matrix,
    }


def majority_baseline(train_targets: Sequence[int], targets: Sequence[int], labels: Sequence[str]) -> dict:
    """The accuracy on `targets` of always answering the most frequent training label."""
    majority = Counter(train_targets).most_common(1)[0][0]
    return {"label": labels[majority], "accuracy": sum(t == majority for t in targets) / len(targets)}


def normalize_rows(matrix: list[list[int]]) -> list[list[float]]:
    """Each row divided by its sum: row i is where names of label i went (recall on the diagonal)."""
    return [[v / sum(row) if sum(row) else 0.0 for v in row] for row in matrix]


def format_per_label(result: dict) -> str:
    width = max(len("label"), *(len(label) for label in result["per_label"]))
    lines = [f"{'label':<{width}}  precision  recall     f1  support"]
    for label, m in result["per_label"].items():
        lines.append(
            f"{label:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {m['support']:7d}"
        )
    return "\n".join(lines)


def format_confusion(matrix: list[list], labels: Sequence[str], normalize: bool = False) -> str:
    """Rows are true labels, columns predicted ones (abbreviated to 4 letters in the header)."""
    cells = normalize_rows(matrix) if normalize else matrix
    width = max(len(label) for label in labels)
    cell = 5 if normalize else max(4, *(len(str(v)) for row in matrix for v in row))
    head = " " * width + " " + "".join(f" {label[:cell]:>{cell}}" for label in labels)
    lines = ["rows: true label, columns: predicted label" + (" (row-normalised)" if normalize else ""), head]
    for label, row in zip(labels, cells):
        values = "".join(f" {v:>{cell}.2f}" if normalize else f" {v:>{cell}d}" for v in row)
        lines.append(f"{label:>{width}} {values}")
    return "\n".join(lines)
