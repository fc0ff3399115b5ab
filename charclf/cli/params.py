"""Option types the command line needs beyond click's own (no torch here)."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (nan passes every comparison click makes)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


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

