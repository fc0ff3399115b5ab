"""How far a probability can be trusted: temperature scaling, calibration error, Brier score,
and what abstaining below a confidence threshold costs (coverage) and buys (selective accuracy)."""

from __future__ import annotations

import math

import torch

# Fewer validation names than this and no temperature is fitted (T stays 1, the raw softmax):
# a handful of names, all answered right, drive T to its bound (0.01), a certainty no model has.
MIN_CALIBRATION_NAMES = 30


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, min_names: int = MIN_CALIBRATION_NAMES) -> float:
    """The T > 0 that minimises the negative log-likelihood of softmax(logits / T) on (N,) targets;
    1.0 (the raw softmax) when there are fewer than `min_names` names to fit it on.

    One scalar, so accuracy cannot change (argmax is the same for every T); fitted on the
    validation split, never on the split it is judged on. The NLL is convex in 1/T, so a
    golden-section search over log T in [1/100, 100] finds the optimum to ~1e-6.
    """
    if len(targets) < max(min_names, 1):
        return 1.0  # too few names to fit on (a tiny dataset's validation split): raw softmax
    logits, targets = logits.double(), targets.long()

    def nll(log_t: float) -> float:
        return torch.nn.functional.cross_entropy(logits / math.exp(log_t), targets).item()

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


def reliability(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> dict:
    """Expected calibration error over `bins` equal-width confidence bins, and the bins themselves.

    probabilities: (N, C), rows summing to 1; targets: (N,). A name falls in the bin of its top
    probability (its confidence); ECE = sum over bins of |accuracy - mean confidence| x share.
    """
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == targets).double()
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to bin 0.
    index = (confidence.double() * bins).ceil().long().clamp(1, bins) - 1
    rows, ece = [], 0.0
    n = len(targets)
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        row = {"low": i / bins, "high": (i + 1) / bins, "count": count, "confidence": None, "accuracy": None}
        if count:
            row["confidence"] = confidence[members].double().mean().item()
            row["accuracy"] = correct[members].mean().item()
            ece += abs(row["accuracy"] - row["confidence"]) * count / n
        rows.append(row)
    return {"ece": ece, "bins": rows}


def brier_score(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over names of the squared distance between the probability vector and the one-hot truth
    (0 is perfect; 2 is the worst)."""
    truth = torch.nn.functional.one_hot(targets.long(), probabilities.shape[1]).to(probabilities.dtype)
    return ((probabilities - truth) ** 2).sum(dim=1).mean().item()


def nll(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true labels."""
    return -probabilities.gather(1, targets.long()[:, None]).clamp_min(1e-12).log().mean().item()


def scores(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> dict:
    """ECE, Brier score and NLL of one set of probabilities, with the reliability bins."""
    r = reliability(probabilities, targets, bins)
    return {"ece": r["ece"], "brier": brier_score(probabilities, targets), "nll": nll(probabilities, targets),
            "bins": r["bins"]}


def selective(confidence: torch.Tensor, correct: torch.Tensor, threshold: float) -> dict:
    """Answer only where confidence >= threshold: the share answered (coverage) and the accuracy there."""
    answered = confidence >= threshold
    n_answered = int(answered.sum())
    return {
        "min_confidence": threshold,
        "coverage": n_answered / len(confidence) if len(confidence) else 0.0,
        "answered": n_answered,
        "abstained": len(confidence) - n_answered,
        "selective_accuracy": correct[answered].double().mean().item() if n_answered else None,
    }


def coverage_curve(confidence: torch.Tensor, correct: torch.Tensor, points: int = 101) -> list[dict]:
    """selective() at thresholds 0, 0.01, ..., 1: how accuracy rises as the model abstains more."""
    return [selective(confidence, correct, i / (points - 1)) for i in range(points)]
