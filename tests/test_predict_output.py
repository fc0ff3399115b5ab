import json

import pytest

from charclf.predict.classifier import UNREADABLE, Prediction


@pytest.mark.parametrize("prediction", [
    Prediction("Jones", "Jones", [("English", 0.91234567), ("Scottish", 1e-07), ("Irish", 0.0)]),
    Prediction('Ślu"s\\à\t😀', "Slusa", [("Polish", 1.0)]),
    Prediction("...", "", abstained=True, reason=UNREADABLE),
    Prediction("山田", "Shantian", [("Chinese", 0.4)], abstained=True, reason="top probability 0.400 is low",
               caveats=["Han characters are read as Mandarin", "a second \u2028caveat"]),
    Prediction("x", "x", [("Ünicode \u2028label", 0.5), ("Zero", 0.0000004)]),
])
def test_json_lines_are_json_dumps_of_to_dict(prediction):
    assert prediction.to_json() == json.dumps(prediction.to_dict())
