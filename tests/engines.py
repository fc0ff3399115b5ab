"""What the Spark and Dask tests share: the model as a .onnx file, a large table of awkward names,
and `charclf predict --csv`'s answers to it, read back per row."""

from __future__ import annotations

import csv
import math
import os
import random
import subprocess
import sys
from pathlib import Path

LATIN = ["Smith", "Jones", "Rossi", "Nakamura", "Schmidt", "Dubois", "Kowalski", "Novak", "Garcia", "Silva",
         "O'Brien", "MacDonald", "Papadopoulos", "Ivanov", "Nguyen", "Kim", "Chen", "Haddad", "Yilmaz", "Jansen",
         "van der Berg", "De Luca", "Müller", "Søren", "Łukasz", "Ñúñez", "Dvořák", "Çelik"]
SCRIPTS = ["Иванов", "Петрова", "Παπαδόπουλος", "Οικονόμου", "حداد", "محمد", "中村", "山田太郎", "김", "박지성",
           "やまだ", "タナカ", "כהן", "王小明", "Đặng"]
NO_LETTERS = ["12345", "—", "!!!", "  ", "\t", "٣٤٥"]
AWKWARD = ['Smith, Jr.', 'say "hi"', "two\nlines", " Jones ", "ROSSI", "x" * 300]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def names_table(rows: int, seed: int = 0) -> list[tuple[int, str | None]]:
    """(id, name) rows, ids 0..rows-1: mostly distinct made-up Latin names (a real one edited), and
    among them repeats of earlier names, empty and blank names, nulls (None), names in other
    scripts, cells with no letters, and cells CSV must quote."""
    rng, out = random.Random(seed), []
    for i in range(rows):
        draw = rng.random()
        if draw < 0.05:
            name = None
        elif draw < 0.09:
            name = ""
        elif draw < 0.12:
            name = rng.choice(NO_LETTERS)
        elif draw < 0.22 and out:
            name = out[rng.randrange(len(out))][1]  # a repeat (maybe of a null)
        elif draw < 0.32:
            base = rng.choice(SCRIPTS)
            name = base + (rng.choice(SCRIPTS)[0] if rng.random() < 0.5 else "")
        elif draw < 0.33:
            name = rng.choice(AWKWARD)
        else:
            chars = list(rng.choice(LATIN))
            chars[rng.randrange(len(chars))] = rng.choice(LETTERS)
            name = "".join(chars) + rng.choice(["", "", "a", "o", "son", "ez", "ski", "ini"])
        out.append((i, name))
    return out


def write_csv(path: Path, rows: list[tuple[int, str | None]]) -> Path:
    """The table as `predict --csv` reads it: id,surname; a null is an empty cell."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "surname"])
        writer.writerows((i, "" if name is None else name) for i, name in rows)
    return path


def export_onnx(folder: Path) -> Path:
    """The shipped model, exported by `charclf export` (needs torch and the export extra)."""
    out = folder / "model.onnx"
    subprocess.run([sys.executable, "-m", "charclf", "export", str(out)], check=True, capture_output=True,
                   env=quiet_env())
    return out


def quiet_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "CHARCLF_THREADS": "1", "OMP_NUM_THREADS": "1", **extra}


def cli_answers(table: Path, model: Path, out: Path, *options: str) -> tuple[list[str], dict[str, list[str]]]:
    """`charclf predict --csv TABLE --column surname` through the command line: the answer
    columns' names, and each id's answer cells as the CSV has them."""
    subprocess.run([sys.executable, "-m", "charclf", "predict", "--csv", str(table), "--column", "surname",
                    "--checkpoint", str(model), "--out", str(out), "-q", *options], check=True, env=quiet_env())
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0][2:], {row[0]: row[2:] for row in rows[1:]}


def as_cell(value) -> str:
    """An engine's typed answer as predict --csv writes it (charclf.predict.tables.cell); null,
    NaN and <NA> are the empty cell."""
    from charclf.predict.tables import cell

    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return ""
    if type(value).__name__ == "bool_":  # numpy's
        value = bool(value)
    return cell(value)


def engine_answers(records, columns: list[str]) -> dict[str, list[str]]:
    """{id: answer cells} from an engine's rows (dict-like, with an id and the answer columns)."""
    return {str(r["id"]): [as_cell(r[c]) for c in columns] for r in records}
