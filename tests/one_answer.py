"""What the one-answer tests share (tests/test_one_answer.py and the engines' tests): a few hundred
names in many scripts, the Python API's answers to them on ONNX Runtime, and the comparison of
another door's answers with those."""

from __future__ import annotations

import functools
from pathlib import Path

import charclf

ROOT = Path(__file__).resolve().parents[1]
ONNX, PT = ROOT / "charclf/pretrained/model.onnx", ROOT / "charclf/pretrained/model.pt"
NATIVE = Path(__file__).resolve().parent / "data/native_names.tsv"
MORE = ["Hinton", "Jones", "O'Brien", "D'Angelo", "McAllister", "Smith-Jones", "Jean-Luc", "van der Berg",
        "de la Cruz", "Ślusàrski", "Müller", "Øster", "Łukasz", "Ñúñez", "Dvořák", "Çelik", "Đặng", "Nguyễn Văn An",
        "Trần", "Phạm", "Lê", "Søren", "Ærø", "Þórsson", "Straße", "Ζαχαρίου", "Ελένη", "Κωνσταντίνος",
        "Фёдоров", "Щукин", "Юрьев", "עמוס", "לוי", "כהן", "אברהם", "عبد الله", "يوسف", "أحمد", "ابن رشد",
        "山本", "田中太郎", "李", "欧阳", "コバヤシ", "すずき", "ワタナベ", "이순신", "정", "남궁민수", "Smith, John",
        "O’Neil", "St. John", "Mary-Ann", "L'Oréal", "ROSSI", "rossi", "x", "Aa", "José María", "12 Smith",
        "Smith2", "...", "12345", "😀", "—", "Ivanov!", "Ivan ov", "Marie‐Claire", "MacDonald"]
TOLERANCE, ACROSS_BACKENDS = 1e-6, 1e-5
ROUNDED = 5e-7  # the printed answers are rounded to 6 decimals


def all_names() -> list[str]:
    native = [line.split("\t")[0] for line in NATIVE.read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    return list(dict.fromkeys(native + MORE))


NAMES = all_names()


def as_answer(top) -> dict[str, float] | None:
    """[(label, probability), ...] of all labels -> {label: probability}; None: no answer."""
    return dict(top) if top else None


def from_json(row: dict) -> dict[str, float] | None:
    if row["abstained"] and "best_guess" not in row:
        return None
    return {p["label"]: p["probability"] for p in row["predictions"]}


def same(got: dict, expected: dict, tolerance: float, door: str) -> None:
    assert got.keys() == expected.keys(), door
    for name, want in expected.items():
        have = got[name]
        if want is None or have is None:
            assert want is None and have is None, f"{door}: {name!r}: {have} != {want}"
            continue
        assert have.keys() == want.keys(), f"{door}: {name!r}"
        gap = max(abs(have[label] - want[label]) for label in want)
        assert gap <= tolerance, f"{door}: {name!r} is {gap:.2e} away"
        leader = max(want, key=want.get)
        if sorted(want.values())[-1] - sorted(want.values())[-2] > 2 * tolerance:  # no near tie
            assert max(have, key=have.get) == leader, f"{door}: {name!r}"


@functools.lru_cache(maxsize=1)
def reference() -> dict:
    """What the Python API answers on ONNX Runtime, all names in one batch: name -> {label: p} or None."""
    return {p.name: as_answer(p.top) for p in charclf.load(ONNX).predict(NAMES, k=18)}


def frame_answers(frame) -> dict:
    columns = [c for c in frame.columns if c.startswith("probability_") and not c[-1].isdigit()]
    out = {}
    for _, row in frame.iterrows():
        error = row["error"]
        out[row["name"]] = None if isinstance(error, str) and error else \
            {c.removeprefix("probability_"): float(row[c]) for c in columns}
    return out
