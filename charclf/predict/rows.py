"""The JSON object of one name, as `charclf predict --json` prints it and the server's
/api/predict answers: one schema, built here only."""

from __future__ import annotations

import json


def json_row(name: str, prediction=None, error: str | None = None, model: str | None = None) -> str:
    """One name's JSON object (ASCII-escaped): its Prediction (see Prediction.to_dict), or, for
    a line that could not be read, the name, the error and (when given) the model's id."""
    if prediction is not None:
        return prediction.to_json()
    row = {"name": name, "error": error or "not predicted"}
    if model is not None:
        row["model"] = model
    return json.dumps(row)


def json_rows(clf, names: list[str], **options) -> list[str]:
    """Predict `names` with `clf` (options: Classifier.predict's, e.g. k, min_confidence); their
    JSON objects in input order."""
    return [json_row(p.name, p) for p in clf.predict(names, **options)]
