"""Option types the command line needs beyond click's own (no torch here)."""

from __future__ import annotations

import math

import click

from charclf.config import MODEL_LIMITS
from charclf.threads import MAX_THREADS


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (nan passes every comparison click makes)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


# Every number option has both bounds (tests/test_bounds.py walks the commands to see that it does):
# a huge value is refused in one line instead of crashing a library or asking for all the memory.
THREADS = click.IntRange(1, MAX_THREADS)  # torch and ONNX Runtime crash on a million threads
MAX_K = MODEL_LIMITS["n_classes"]  # labels per name: no model has more labels
MAX_BATCH = 1 << 20  # names or rows read and handled together
MAX_EPOCHS = 100_000
MAX_SECONDS = 24 * 3600.0  # a timeout


class FilePath(click.Path):
    """click.Path that refuses an empty path: click would read it as the current folder ('.'),
    which no command means (an unset shell variable gives one: --out "$OUT")."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value:
            self.fail("an empty path: give a file name", param, ctx)
        return super().convert(value, param, ctx)


# predict's options as the command line spells them (charclf.predict.options names them k, ...).
PREDICT_SPELLING = {"k": "-k", "min_confidence": "--min-confidence", "coverage": "--coverage", "prior": "--prior",
                    "full_names": "--full-name"}


class _PredictOption:
    """A predict option's type: parsed as a number by click, then checked by the option's one rule
    (charclf.predict.options.check), whose words every door shares; --help still shows the range."""

    field: str
    parse: click.ParamType

    def convert(self, value, param, ctx):
        from charclf.predict.options import OptionError, check

        number = self.parse.convert(value, param, ctx)
        try:
            return check(self.field, number)
        except OptionError as e:
            raise click.UsageError(e.worded(PREDICT_SPELLING), ctx) from None


class PredictInt(_PredictOption, click.IntRange):
    parse = click.INT

    def __init__(self, field: str, **bounds):
        super().__init__(**bounds)
        self.field = field


class PredictFloat(_PredictOption, click.FloatRange):
    parse = click.FLOAT

    def __init__(self, field: str, **bounds):
        super().__init__(**bounds)
        self.field = field

