"""How far a probability can be trusted: temperature scaling, calibration error, Brier score,
and what abstaining below a confidence threshold costs (coverage) and buys (selective accuracy)."""

from __future__ import annotations

import math

import numpy as np

from charclf.config import MAX_BINS

# Fewer validation names than this and no temperature is fitted (T stays 1, the raw softmax):
# a handful of names, all answered right, drive T to its bound (0.01), a certainty no model has.
MIN_CALIBRATION_NAMES = 30


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """(N, C) logits -> (N, C) softmax(logits / temperature), in the logits' float type."""
    z = np.asarray(logits) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-softmax of the true labels; (N, C) float64 logits, (N,) int targets."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    return float((log_z - shifted[np.arange(len(targets)), targets]).mean())


def fit_temperature(logits, targets, min_names: int = MIN_CALIBRATION_NAMES) -> float:
    """The T > 0 that minimises the negative log-likelihood of softmax(logits / T) on (N,) targets
    (arrays or CPU tensors); 1.0 (the raw softmax) when there are fewer than `min_names` names to fit it on.
    One scalar, so accuracy cannot change (argmax is the same for every T); fitted on the
    validation split, never on the split it is judged on. The NLL is convex in 1/T, so a
    golden-section search over log T in [1/100, 100] finds the optimum to ~1e-6.
    """
    if len(targets) < max(min_names, 1):
        return 1.0  # too few names to fit on (a tiny dataset's validation split): raw softmax
    logits, targets = np.asarray(logits, dtype=np.float64), np.asarray(targets, dtype=np.int64)

    def nll(log_t: float) -> float:
        return cross_entropy(logits / math.exp(log_t), targets)

    lo, hi = math.log(0.01), math.log(100.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    while hi - lo > 1e-6:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def check_bins(bins) -> None:
    """A ValueError unless `bins` is a whole number of confidence bins from 1 to MAX_BINS."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValueError(f"bins must be a whole number from 1 to {MAX_BINS}; got {bins!r}")


def reliability(probabilities, targets, bins: int = 15) -> dict:
    """Expected calibration error over `bins` equal-width confidence bins, and the bins themselves.
    probabilities: (N, C), rows summing to 1; targets: (N,). A name falls in the bin of its top
    probability (its confidence); ECE = sum over bins of |accuracy - mean confidence| x share.
    """
    check_bins(bins)
    probabilities, targets = np.asarray(probabilities), np.asarray(targets)
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = (probabilities.argmax(axis=1) == targets).astype(np.float64)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to bin 0.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64), 1, bins) - 1
    rows, ece = [], 0.0
    n = len(targets)
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        row = {"low": i / bins, "high": (i + 1) / bins, "count": count, "confidence": None, "accuracy": None}
        if count:
            row["confidence"] = float(confidence[members].mean())
            row["accuracy"] = float(correct[members].mean())
            ece += abs(row["accuracy"] - row["confidence"]) * count / n
        rows.append(row)
    return {"ece": ece, "bins": rows}


def brier_score(probabilities, targets) -> float:
    """Mean over names of the squared distance between the probability vector and the one-hot truth
    (0 is perfect; 2 is the worst)."""
    probabilities, targets = np.asarray(probabilities, dtype=np.float64), np.asarray(targets, dtype=np.int64)
    truth = np.zeros_like(probabilities)
    truth[np.arange(len(targets)), targets] = 1.0
    return float(((probabilities - truth) ** 2).sum(axis=1).mean())


def nll(probabilities, targets) -> float:
    """Mean negative log-likelihood of the true labels."""
    probabilities, targets = np.asarray(probabilities, dtype=np.float64), np.asarray(targets, dtype=np.int64)
    return float(-np.log(np.maximum(probabilities[np.arange(len(targets)), targets], 1e-12)).mean())


def scores(probabilities, targets, bins: int = 15) -> dict:
    """ECE, Brier score and NLL of one set of probabilities, with the reliability bins."""
    r = reliability(probabilities, targets, bins)
    return {"ece": r["ece"], "brier": brier_score(probabilities, targets), "nll": nll(probabilities, targets),
            "bins": r["bins"]}


def selective(confidence, correct, threshold: float) -> dict:
    """Answer only where confidence >= threshold: the share answered (coverage) and the accuracy there."""
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=np.float64)
    answered = confidence >= threshold
    n_answered = int(answered.sum())
    return {
        "min_confidence": threshold,
        "coverage": n_answered / len(confidence) if len(confidence) else 0.0,
        "answered": n_answered,
        "abstained": len(confidence) - n_answered,
        "selective_accuracy": float(correct[answered].mean()) if n_answered else None,
    }


def coverage_curve(confidence, correct, points: int = 101) -> list[dict]:
    """selective() at thresholds 0, 0.01, ..., 1: how accuracy rises as the model abstains more."""
    return [selective(confidence, correct, i / (points - 1)) for i in range(points)]
