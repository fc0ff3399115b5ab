"""What a prediction may be asked, checked once: PredictOptions.

Every door builds one before it predicts: `charclf predict` (its option types and the
combination of --coverage and --prior), Classifier.predict, predict_dataframe and the frames of
Spark and Dask (charclf.predict.frames), and the server's query parameters (charclf.server.schema).
A bad value is one OptionError whose words are the same at every door; only the option's name
is spelled as that door spells it (`-k` on the command line, `top_k` in a query, `k` in Python).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields
from typing import Callable, Mapping

from charclf.errors import CharclfError

COMBINED = "cannot be combined: label sets keep their coverage for the training population only"


class OptionError(CharclfError, ValueError):
    """Options that cannot be: `names` (the fields at fault, as PredictOptions names them) and
    `problem` (what is wrong, without the names). A usage error (exit 2); a ValueError too."""

    exit_code = 2

    def __init__(self, names: tuple[str, ...], problem: str):
        self.names, self.problem = names, problem
        super().__init__(self.worded())

    def worded(self, spelling: Mapping[str, str] | None = None) -> str:
        """The one-line message with each option named as `spelling` says (default: the Python names)."""
        spelling = spelling or {}
        return f"{' and '.join(spelling.get(name, name) for name in self.names)} {self.problem}"


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# field -> (the values it takes, what it must be in words). NaN fails every comparison.
RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "k": (lambda v: _whole(v) and v >= 1, "must be a whole number >= 1"),
    "min_confidence": (lambda v: v is None or (_real(v) and 0 <= v <= 1), "must be a number from 0 to 1"),
    "coverage": (lambda v: v is None or (_real(v) and 0 < v < 1), "must be a number between 0 and 1 (exclusive)"),
    "prior": (lambda v: v is None or isinstance(v, (str, dict)),
              "must be uniform, train, a JSON file of label: weight, or a {label: weight} dict"),
    "full_names": (lambda v: isinstance(v, bool), "must be true or false"),
}


@dataclass(frozen=True)
class PredictOptions:
    """Classifier.predict's options, checked when made (OptionError): `k` labels per name,
    abstaining below `min_confidence`, a conformal label set for `coverage`, probabilities
    reweighted to a `prior`, names read as `full_names`. A coverage and a prior other than train
    do not combine (the sets' guarantee holds for the training population only)."""

    k: int = 3
    min_confidence: float | None = None
    coverage: float | None = None
    prior: str | dict | None = None
    full_names: bool = False

    def __post_init__(self):
        for field in fields(self):
            check(field.name, getattr(self, field.name))
        if self.coverage is not None and self.prior not in (None, "train"):
            raise OptionError(("coverage", "prior"), COMBINED)

    def keywords(self) -> dict:
        """Classifier.predict's keyword arguments."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def for_model(self, clf) -> "PredictOptions":
        """These options, checked against the loaded model `clf` before any name is read: a coverage
        needs its label-set calibration (CheckpointError), a prior other than train its training
        label counts and, for a file or a dict, a weight for each of its labels (DataError)."""
        from charclf.predict import priors

        if self.coverage is not None:
            clf.set_threshold(self.coverage)
        if self.prior not in (None, "train"):
            priors.training_prior(clf.train_counts, "{...}" if isinstance(self.prior, dict) else self.prior)
            priors.target_prior(self.prior, clf.labels)
        return self


def check(name: str, value):
    """`value` when the option `name` may take it, else OptionError: the one rule per option (the
    command line's option types check each value with it as it is parsed)."""
    allowed, problem = RULES[name]
    if not allowed(value):
        raise OptionError((name,), f"{problem}, got {_shown(value)}")
    return value


def _shown(value) -> str:
    """A value as the message shows it: a number as every door reads it (1, 1.0 and "1" alike: 1)."""
    return f"{value:g}" if _real(value) else repr(value)
