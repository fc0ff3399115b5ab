"""The shapes of a model file's card tables (its train_config, metrics and calibration), checked
when the file is loaded, so that every door (`info`, `serve`, `predict`, `evaluate`) either reads
them or refuses the file in one line, the same way.

Each table must hold plain values only (tables with string keys, lists, strings, numbers,
true/false, null), nested at most MAX_DEPTH levels. The entries charclf reads back (FIELDS) must
have the type it writes, when present and not null: a score table its accuracy, macro-F1 and count, a split
size a whole number, a version or a date a string. Entries charclf does not read are not judged."""

from __future__ import annotations

import math
from typing import Any

from charclf.errors import CheckpointError

MAX_DEPTH = 16  # as for an .onnx file's description (charclf.files.description.MAX_JSON_DEPTH)
MAX_ITEMS = 1_000_000  # values in all the tables together: a history of epochs is a few thousand


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)  # older files hold null where nothing was recorded


class Maybe:
    """An entry a table may lack (a checkpoint kept by an interrupted run has no name count)."""

    def __init__(self, check):
        self.check = check


SCORES = {"accuracy": _number, "macro_f1": _number, "n": Maybe(_whole)}
CALIBRATION = {"fit_on": _text, "test_before": {"ece": _number},
               "test_after": {"ece": _number}}
# Where each table's entries are read: files.card (info, serve's /api/model), cli.evaluate, predict.classifier.
FIELDS = {
    "train_config": {
        "charclf": _text, "torch": _text, "saved_at": _text, "data_fingerprint": _text, "data_dir": _text,
        "device": _text, "seed": _whole, "epochs": _whole, "batch_size": _whole, "lr": _number,
        "weight_decay": _number, "label_smoothing": _number, "average_decay": _number, "next_letter_weight": _number,
        "split_sizes": {"train": _whole, "val": _whole, "test": _whole},
    },
    "metrics": {
        "val": SCORES, "test": SCORES, "first_run": {"test": SCORES},
        "test_majority_baseline": {"label": _text, "accuracy": _number},
        "refit": {"pairs": _whole}, "parameters": _whole, "best_epoch": _whole, "epochs_run": _whole,
        "train_seconds": _number, "calibration": CALIBRATION,
        "recipe": {"name": _text, "teachers": {"members": _whole, "test": {"accuracy": _number, "macro_f1": _number},
                                               "train_seconds": _number}},
    },
    "calibration": CALIBRATION,
}
LOOSE = {("metrics", "first_run"), ("metrics", "first_run", "test"), ("metrics", "calibration"),
         ("metrics", "recipe")}  # tables read entry by entry (a missing one is "unknown"); others are read whole


def check_card_tables(payload: dict) -> None:
    """One CheckpointError naming the first entry of the card tables that is not as FIELDS says."""
    counted = [0]
    for table, fields in FIELDS.items():
        value = payload.get(table, {})
        _plain(value, table, 0, counted)
        _shaped(value, fields, table, (table,))


def _plain(value: Any, where: str, depth: int, counted: list[int]) -> None:
    """Plain values only, nested at most MAX_DEPTH deep, MAX_ITEMS in all."""
    counted[0] += 1
    if depth > MAX_DEPTH or counted[0] > MAX_ITEMS:
        raise CheckpointError(f"its {where.split('.')[0]} nests deeper than {MAX_DEPTH} levels or holds more than "
                              f"{MAX_ITEMS:,} values; refused")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"its {where} has a key that is not a string ({type(key).__name__})")
            _plain(item, f"{where}.{key}", depth + 1, counted)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _plain(item, where, depth + 1, counted)
    elif not (value is None or isinstance(value, (str, bool, int)) or isinstance(value, float)):
        raise CheckpointError(f"its {where} holds a {type(value).__name__}, not a plain value")


def _shaped(value: Any, fields: dict, where: str, path: tuple[str, ...]) -> None:
    """`value` a table whose entries named in `fields` are of their types (a nested table: all its keys)."""
    if not isinstance(value, dict):
        raise CheckpointError(f"its {where} is not a table")
    for key, expected in fields.items():
        if value.get(key) is None:  # not recorded ("unknown"): a null refit is a run on train alone
            continue
        item, name = value[key], f"{where}.{key}"
        if isinstance(expected, dict):
            missing = list(expected) if not isinstance(item, dict) else [] if path + (key,) in LOOSE else \
                [k for k, check in expected.items() if k not in item and not isinstance(check, Maybe)]
            if missing or not isinstance(item, dict):
                needed = [k for k, check in expected.items() if not isinstance(check, Maybe)]
                raise CheckpointError(f"its {name} is not a table holding {', '.join(needed)}")
            _shaped(item, expected, name, path + (key,))
            continue
        check = expected.check if isinstance(expected, Maybe) else expected
        if not check(item):
            raise CheckpointError(f"its {name} is not {_WHAT[check]} ({ascii(item)[:40]})")


_WHAT = {_number: "a finite number", _whole: "a whole number", _text: "a string or null"}
