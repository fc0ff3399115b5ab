"""Target priors: the model's probabilities describe names drawn like its training data (for the
built-in dataset, half of them Russian). Used on another population, with other label
frequencies, Bayes' rule moves them:

    p'(y | x)  proportional to  p(y | x) * pi'(y) / pi_train(y)

where pi_train is the share of each label among the training names and pi' the target's. This
assumes only the label frequencies differ (how each language spells its names stays the same).
`--prior uniform` asks "which language, if all were equally common?"; `--prior train` is the
model as trained; a JSON file {"label": weight, ...} gives the target's frequencies (weights
are normalised; every label must be there; 0 rules a label out).
"""

from __future__ import annotations

import json
import math

import numpy as np

from charclf.errors import DataError

MAX_PRIOR_BYTES = 1 << 20  # a table of label: weight (18 labels: a few hundred bytes)


def target_prior(spec: str | dict, labels: list[str]) -> np.ndarray | None:
    """`spec` (uniform, train, a JSON file's path, or a {label: weight} dict) -> the (C,) target
    shares; None for "train" (nothing to change). DataError with one line when it cannot serve."""
    if spec == "train":
        return None
    if spec == "uniform":
        return np.full(len(labels), 1 / len(labels))
    weights = spec if isinstance(spec, dict) else _read_json(str(spec))
    spec = "{...}" if isinstance(spec, dict) else spec
    if not isinstance(weights, dict):
        raise DataError(f"--prior {spec}: expected a JSON object of label: weight")
    unknown = sorted(set(weights) - set(labels))
    missing = [label for label in labels if label not in weights]
    if unknown or missing:
        problem = f"unknown labels {', '.join(unknown)}" if unknown else f"no weight for {', '.join(missing)}"
        raise DataError(f"--prior {spec}: {problem} (the model's labels: {', '.join(labels)})")
    values = [weights[label] for label in labels]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in values):
        raise DataError(f"--prior {spec}: every weight must be a finite number >= 0")
    shares = np.array(values, dtype=np.float64)
    shares /= shares.max(initial=0.0) or 1.0  # scaled first: weights of 1e308 would add up to infinity
    if shares.sum() <= 0:
        raise DataError(f"--prior {spec}: the weights add up to 0")
    return shares / shares.sum()


def _read_json(spec: str):
    """The JSON file at `spec`, read bounded: at most MAX_PRIOR_BYTES, nesting at most MAX_JSON_DEPTH
    (json.loads recurses once per level), each checked before parsing."""
    from charclf.files.description import MAX_JSON_DEPTH, json_depth

    try:
        with open(spec, "rb") as f:
            data = f.read(MAX_PRIOR_BYTES + 1)
        if len(data) > MAX_PRIOR_BYTES:
            raise DataError(f"--prior {spec}: more than {MAX_PRIOR_BYTES:,} bytes, far more than a table of label: "
                            "weight needs; refused")
        text = data.decode("utf-8")
        if json_depth(text) > MAX_JSON_DEPTH:
            raise DataError(f"--prior {spec}: its JSON nests deeper than {MAX_JSON_DEPTH} levels (a prior is one "
                            "table of label: weight); refused")
        return json.loads(text)
    except FileNotFoundError:
        raise DataError(f"--prior {spec}: no such file (give uniform, train, or a JSON file)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        first = (str(e).splitlines() or [""])[0][:200]
        raise DataError(f"--prior {spec}: not a readable JSON file ({first})") from None


def training_prior(train_counts: list[int] | None, spec: str) -> np.ndarray:
    """The (C,) label shares of the training names, which the checkpoint records."""
    if not train_counts or sum(train_counts) <= 0:
        raise DataError(f"--prior {spec}: this checkpoint does not record its training label counts "
                        "(retrain it with this version of charclf)")
    counts = np.maximum(np.array(train_counts, dtype=np.float64), 0.5)  # a label absent from training stays possible
    return counts / counts.sum()


def reweight(probabilities, target, train) -> np.ndarray:
    """(N, C) probabilities -> the same under the target prior, rows renormalised to sum to 1.
    A row whose every label the target rules out stays as it was (nothing to renormalise)."""
    probabilities = np.asarray(probabilities)
    ratio = np.asarray(target, dtype=np.float64) / np.asarray(train, dtype=np.float64)
    shifted = probabilities.astype(np.float64) * (ratio / ratio.max())[None, :]  # (N, C); scaled: no overflow
    total = shifted.sum(axis=1, keepdims=True)
    out = np.where(total > 0, shifted / np.maximum(total, 1e-300), probabilities)
    return out.astype(probabilities.dtype)
