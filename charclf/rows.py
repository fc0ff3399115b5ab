"""The JSON object of one name, as `charclf predict --json` prints it and the server's
/api/predict answers: one schema, built here only."""

from __future__ import annotations

import json


def json_row(name: str, prediction=None, error: str | None = None) -> str:
    """One name's JSON object (ASCII-escaped): its Prediction (see Prediction.to_dict), or, for
    a line that could not be read, the name and the error."""
    if error is not None or prediction is None:
        return json.dumps({"name": name, "error": error or "not predicted"})
    return prediction.to_json()


def json_rows(clf, names: list[str], k: int = 3, min_confidence: float | None = None) -> list[str]:
    """Predict `names` with `clf`; their JSON objects in input order."""
    return [json_row(p.name, p) for p in clf.predict(names, k=k, min_confidence=min_confidence)]
