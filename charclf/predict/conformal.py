"""Conformal label sets: for each name, the smallest set of labels that holds its true label with
a chosen probability (the coverage, e.g. 0.9), with a guarantee that needs no trust in the
model's probabilities, only that new names come from the same population as the validation split.

Split conformal with the score of the "least ambiguous set-valued classifier" (LAC), made to fit
sets that are never empty: a name's set is its top label plus every label with p >= 1 - q, so
the score of (name, true label) is 0 when the true label is the top one and 1 - p(true label)
otherwise. At save time the scores of the validation names are stored, sorted; for a coverage c
the threshold q is the ceil((n + 1) c)-th smallest of the n scores (the standard finite-sample
rule: coverage >= c on average over new names). LAC was chosen over adaptive sets (APS) because
it gives the smallest sets on average for a given coverage and needs no randomisation; its
coverage holds on average over names, not for each label separately. A coverage below the
model's accuracy cannot be reached with non-empty sets: there every set is the top label alone.

Nothing here touches the probabilities themselves: they stay the calibrated ones.
"""

from __future__ import annotations

import math

import numpy as np

SCORE = "0 if the true label is the top one, else 1 - p(true label)"
LEVELS = (0.8, 0.9, 0.95)  # what evaluate and the benchmark report


def fit(probabilities, targets) -> dict:
    """(N, C) calibrated probabilities of the validation names and their (N,) labels (arrays or CPU
    tensors) -> what the checkpoint stores: the score's name and the N sorted scores (rounded: 6
    digits are plenty)."""
    probabilities, targets = np.asarray(probabilities, dtype=np.float64), np.asarray(targets, dtype=np.int64)
    true_p = np.take_along_axis(probabilities, targets[:, None], axis=1)[:, 0]
    is_top = probabilities.argmax(axis=1) == targets
    scores = sorted(round(float(s), 6) for s in np.where(is_top, 0.0, 1 - true_p))
    return {"score": SCORE, "fit_on": "val", "n": len(scores), "scores": scores}


def threshold(calibration: dict, coverage: float) -> float:
    """The score threshold q for `coverage` in (0, 1): labels with p >= 1 - q enter the set.
    With too few validation names for that coverage (ceil((n + 1) c) > n), every label enters."""
    scores = calibration["scores"]
    rank = math.ceil((len(scores) + 1) * coverage)
    return math.inf if rank > len(scores) else scores[rank - 1]


def label_sets(probabilities, q: float) -> list[list[int]]:
    """(N, C) probabilities -> for each name, the indices of its set, likeliest first (never empty)."""
    probabilities = np.asarray(probabilities)
    order = np.argsort(-probabilities, axis=1, kind="stable")  # (N, C): labels by rank
    inside = np.take_along_axis(probabilities >= 1 - q, order, axis=1)  # (N, C): in set, by rank
    inside[:, 0] = True  # never empty: the top label always (the score counts on it)
    sizes = inside.sum(axis=1).tolist()  # the members come first in rank order: p is sorted
    return [row[:size] for row, size in zip(order.tolist(), sizes)]


def report(probabilities, targets, calibration: dict, levels: tuple[float, ...] = LEVELS) -> list[dict]:
    """For each coverage level: the share of names whose set holds the true label (the empirical
    coverage, to compare with the level) and the mean and largest set size."""
    targets = np.asarray(targets).tolist()
    rows = []
    for level in levels:
        sets = label_sets(probabilities, threshold(calibration, level))
        hits = sum(int(t) in s for s, t in zip(sets, targets))
        sizes = [len(s) for s in sets]
        rows.append({"coverage_target": level, "coverage": hits / len(sets) if sets else None,
                     "mean_size": sum(sizes) / len(sizes) if sizes else None, "max_size": max(sizes, default=None)})
    return rows

