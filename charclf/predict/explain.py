"""Letter by letter: how a model's answer for a name forms as the name is read.

Every prefix of the name as the model reads it (H, Hi, Hin, ... Hinton) is one row of a single
batch of names, answered as `predict` answers any name (the name's reading, the network, the
temperature, the script's evidence and the prior: Classifier.answer); row i holds what the model
would answer for the first i letters, and the last row is predict's answer. Each prefix is a
whole input of its own, so this holds for every backbone, bidirectional ones included (their
backward pass starts again at each prefix's end). A label that reads the name its own way
(Japanese, for kanji) follows its own reading cut at the same share of its letters.
"""

from __future__ import annotations

import numpy as np

from charclf.errors import CharclfError
from charclf.names.reader import EMPTY, UNREADABLE, prefix_readings, read
from charclf.printable import printable

MAX_TRACKED = 8  # labels drawn across the letters, at most: more would not be readable
TURNING_POINTS = 3  # letters named as moving the final answer most
MAX_LETTERS = 256  # an L-letter name is a batch of L prefixes, L * (L + 1) / 2 letters in all


class UnreadableName(CharclfError):
    """The name has no letters to read, even after transliteration, or too many to explain."""

    exit_code = 2


def explain(clf, name: str, k: int = 3, prior: str | dict | None = None) -> dict:
    """What `clf` answers after each letter of `name` (plain types, ready for JSON).

    Returns name, as_read (what the model reads), caveats, label (the final answer), tracked
    (labels followed across the letters: the final top k, then any label that led at some
    prefix), letters (one row per letter: the letter read, the character(s) typed for it, the
    top k labels after it, and the tracked labels' probabilities), and turning_points (the
    letters whose reading changed the final label's probability most, largest first). Every row
    is answered as `clf.predict` answers (with the same `prior`): the last row is its answer.
    """
    reading = read(name, clf.alphabet)
    as_read = reading.as_read
    if reading.problem in (UNREADABLE, EMPTY):
        raise UnreadableName(f"{name!r} has no letters to read, even after transliteration to Latin")
    if reading.problem is not None:  # too long to read at all
        raise UnreadableName(f"too long to explain: {reading.problem}")
    if len(as_read) > MAX_LETTERS:
        raise UnreadableName(f"too long to explain: {len(as_read)} letters as read, at most {MAX_LETTERS}")
    k = max(1, min(k, len(clf.labels)))
    probs = clf.answer(prefix_readings(reading), prior)  # (L, C): row i after letter i
    labels = clf.labels
    top_i = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (L, k): best first, ties in label order
    top_p = np.take_along_axis(probs, top_i, axis=1).astype(float)  # (L, k)
    leaders = list(dict.fromkeys(labels[i] for i in top_i[:, 0].tolist()))  # in order of first lead
    tracked = list(dict.fromkeys([labels[i] for i in top_i[-1].tolist()] + leaders))[:max(k, MAX_TRACKED)]
    typed = typed_characters(name, as_read, clf.alphabet)
    letters = []
    for i, letter in enumerate(as_read):
        letters.append({
            "position": i + 1,
            "letter": letter,
            "typed": typed[i],
            "top": [{"label": labels[j], "probability": round(p, 6)}
                    for p, j in zip(top_p[i].tolist(), top_i[i].tolist())],
            "probabilities": {label: round(float(probs[i, labels.index(label)]), 6) for label in tracked},
        })
    final = tracked[0]
    return {"name": name, "as_read": as_read, "caveats": list(reading.caveats), "label": final, "tracked": tracked,
            "letters": letters, "turning_points": turning_points(letters, final)}


def turning_points(letters: list[dict], label: str, count: int = TURNING_POINTS) -> list[dict]:
    """The letters whose reading changed `label`'s probability most from the prefix before them,
    largest change (up or down) first. The first letter has no prefix before it and is not ranked."""
    changes = [{"position": row["position"], "letter": row["letter"], "typed": row["typed"],
                "change": round(row["probabilities"][label] - before["probabilities"][label], 6)}
               for before, row in zip(letters, letters[1:])]
    changes.sort(key=lambda c: -abs(c["change"]))
    return changes[:count]


def typed_characters(name: str, as_read: str, alphabet: str) -> list[str]:
    """For each letter of `as_read`, the characters of `name` as typed that it was read from
    (Иванов -> И, в, а, н, о, в; 山田 -> 山 four times, then 田 four times). Found by reading
    ever longer prefixes of what was typed; where a reading is not a prefix of the whole one
    (context changed it), the letter keeps itself."""
    typed = list(as_read)
    if as_read == name:
        return typed
    done = 0  # letters of as_read already given their source
    for end in range(1, len(name) + 1):
        reading = read(name[:end], alphabet).as_read
        if not as_read.lower().startswith(reading.lower()):
            continue
        for i in range(done, len(reading)):
            typed[i] = name[end - 1] if name[end - 1].strip() else as_read[i]
        done = max(done, len(reading))
    return typed


def format_explanation(result: dict) -> str:
    """The text table of `charclf explain`: one row per letter with the top labels after it and
    the change in the final label's probability, then the letters that moved it most."""
    final = result["label"]
    shown = printable(result["name"])  # as typed, what a terminal would act on escaped
    head = f"{shown}: {final} {result['letters'][-1]['probabilities'][final]:.3f}"
    if result["as_read"] != result["name"]:
        head += f"  (read as {result['as_read']})"
    lines = [head, *(f"note: {caveat}" for caveat in result["caveats"]), ""]
    typed_column = any(row["typed"] != row["letter"] for row in result["letters"])
    width = max(len(result["as_read"]), len("prefix"))
    lines.append(_header(width, typed_column, final))
    previous = None
    for row in result["letters"]:
        now = row["probabilities"][final]
        change = "" if previous is None else f"{now - previous:+.3f}"
        prefix = result["as_read"][:row["position"]]
        typed = f"{printable(row['typed']):<5}  " if typed_column else ""
        top = "  ".join(f"{t['label']} {t['probability']:.3f}" for t in row["top"])
        lines.append(f"{row['position']:>3}  {prefix:<{width}}  {typed}{change:>7}  {top}")
        previous = now
    if result["turning_points"]:
        moved = ", ".join(f"{t['letter']} (letter {t['position']}, {t['change']:+.3f})"
                          for t in result["turning_points"])
        lines += ["", f"letters that moved {final} most: {moved}"]
    return "\n".join(lines)


def _header(width: int, typed_column: bool, final: str) -> str:
    typed = f"{'typed':<5}  " if typed_column else ""
    return f"{'#':>3}  {'prefix':<{width}}  {typed}{'change':>7}  top labels after the letter (change: of {final})"
