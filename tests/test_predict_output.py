import json

import pytest

from charclf.classifier import Prediction


@pytest.mark.parametrize("prediction", [
    Prediction("Jones", "Jones", [("English", 0.91234567), ("Scottish", 1e-07), ("Irish", 0.0)]),
    Prediction('Ślu"s\\à\t😀', "Slusa", [("Polish", 1.0)]),
    Prediction("...", "...", error="no letters the model can read (after folding to its alphabet)"),
    Prediction("x", "x", [("Ünicode \u2028label", 0.5), ("Zero", 0.0000004)]),
])
def test_json_lines_are_json_dumps_of_to_dict(prediction):
    assert prediction.to_json() == json.dumps(prediction.to_dict())
