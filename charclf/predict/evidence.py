"""The script a name was typed in, as evidence combined with the network's probabilities.

The network reads only a Latin spelling, so it estimates P(label | reading). The script adds
P(script | label): under the assumption that, given the label, how a name reads does not depend
on the script it was typed in, Bayes' rule gives

    P(label | reading, script)  ∝  P(label | reading) x P(script | label)

(the network's posterior already holds the label prior). `combine` is that product, renormalised
per name: the one place where the two meet. A product keeps what each side knows: the network
still ranks the labels a script allows (Chinese or Japanese for Han), and the script only moves
probability between labels that write it differently; when every label gives a name the same
likelihood, nothing changes.

A name in plain ASCII letters is no evidence, for every model: any name can be typed that way,
whatever script its label's training names were written in. So the network's calibrated
probabilities for Latin names stand exactly as they were (and `charclf calibration`, which scores
the folded names of a split, is unchanged).

Where P(script | label) comes from:
- a model of the 18 built-in labels, whose training names are Latin: the facts below about which
  languages are natively written in which script (BUILTIN_NATIVE) and which accented Latin letters
  their spelling uses (ORTHOGRAPHIES). A native label has likelihood 1, any other NON_NATIVE (a
  Greek-letter name of a non-Greek label is rare, but a Russian text writes every name, Kim
  included, in Cyrillic), or for accented letters NON_NATIVE_LETTER (accents are borrowed and
  dropped more freely). Scripts no built-in label is written in (Hebrew, Devanagari ...) and
  letters no label's spelling uses (the Hungarian ő) are no evidence.
- any other label set: counted from the raw training names at training time (`learn`), smoothed
  towards the share of each script over all labels, so that every script keeps a probability for
  every label (a Cyrillic name can still be English when the network is sure enough). It is
  stored in the checkpoint (`scripts`); a checkpoint without it gets no script evidence.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from charclf.names import scripts as S
from charclf.names.reader import Reading

BUILTIN_LABELS = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
                  "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]
BUILTIN_NATIVE = {S.GREEK: {"Greek"}, S.CYRILLIC: {"Russian"}, S.ARABIC: {"Arabic"}, S.HAN: {"Chinese", "Japanese"},
                  S.KANA: {"Japanese"}, S.HANGUL: {"Korean"}}
# Likelihood of a script (accented letters) for a label not natively written in it (not using
# them), against 1 for a native one; reasons in the module docstring and docs/transliteration.md.
NON_NATIVE = 0.01
NON_NATIVE_LETTER = 0.05


def _vietnamese_letters() -> str:
    """Every Vietnamese vowel with each of its tone marks (NFC), and đ."""
    import unicodedata

    tones = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]
    vowels = ["a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y"]
    return "đ" + "".join(unicodedata.normalize("NFC", v + t) for v in vowels for t in tones)


# The accented Latin letters each built-in label's names are spelt with, in the language itself or
# in its usual romanisation (pinyin tones, Hepburn and Arabic long vowels).
ORTHOGRAPHIES = {
    "Arabic": set("āīūḥṣḍṭẓ"),
    "Chinese": set("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü"),
    "Czech": set("áčďéěíňóřšťúůýž"),
    "Dutch": set("éèëïöü"),
    "English": set(),
    "French": set("àâæçéèêëîïôœùûüÿ"),
    "German": set("äöüß"),
    "Greek": set(),
    "Irish": set("áéíóú"),
    "Italian": set("àèéìíòóùú"),
    "Japanese": set("āēīōū"),
    "Korean": set("ŏŭ"),
    "Polish": set("ąćęłńóśźż"),
    "Portuguese": set("áâãàçéêíóôõú"),
    "Russian": set("ë"),
    "Scottish": set(),
    "Spanish": set("áéíóúñü"),
    "Vietnamese": set(_vietnamese_letters()),
}
SMOOTHING = 2.0  # pseudo-names per label spread over the scripts by their share in all labels


def combine(probabilities: np.ndarray, likelihoods: np.ndarray) -> np.ndarray:
    """(N, C) network probabilities x (N, C) likelihoods P(script | label), renormalised per row.

    A row of equal likelihoods returns its probabilities unchanged; a row whose product is all 0
    (impossible with positive likelihoods) keeps its probabilities too."""
    product = probabilities * likelihoods
    total = product.sum(axis=1, keepdims=True)
    return np.where(total > 0, product / np.maximum(total, np.finfo(product.dtype).tiny), probabilities)


class ScriptEvidence:
    """P(script | label) for one label set: the built-in facts, or a table learned from training names."""

    def __init__(self, labels: Sequence[str], table: dict[str, dict[str, float]] | None = None):
        self.labels = list(labels)
        self.table = table  # label -> script -> P(script | label); None: the built-in facts

    @classmethod
    def for_checkpoint(cls, labels: Sequence[str], stored: dict) -> "ScriptEvidence | None":
        """The evidence a model uses: its learned table, the built-in facts for the 18 built-in
        labels (their training names are Latin: a table learned from them says nothing of other
        scripts), else none."""
        if sorted(labels) == BUILTIN_LABELS:
            return cls(labels)
        table = stored.get("probabilities") if isinstance(stored, dict) else None
        return cls(labels, table) if table else None

    @property
    def source(self) -> str:
        return "built-in" if self.table is None else "training data"

    def likelihoods(self, name: str, script: str | None = None) -> list[float] | None:
        """P(the name's script | label) for each label, or None where it is no evidence. `script`:
        the name's, when already known (charclf.names.reader.Reading.script)."""
        script = script or S.detect_script(name)
        if self.table is not None:
            return [self.table.get(label, {}).get(script, 1.0) for label in self.labels]
        if script == S.LATIN_DIACRITICS:
            letters = S.latin_diacritics(name) & set().union(*ORTHOGRAPHIES.values())
            if not letters:
                return None
            return [1.0 if letters <= ORTHOGRAPHIES.get(label, set()) else NON_NATIVE_LETTER for label in self.labels]
        native = BUILTIN_NATIVE.get(script)
        return [1.0 if label in native else NON_NATIVE for label in self.labels] if native else None

    def posterior(self, readings: Sequence[Reading], probabilities: np.ndarray,
                  score: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """(N, C) probabilities of the names' readings -> (N, C) with the script evidence (numpy
        arrays, so that the torch and the ONNX Runtime classifiers share it).

        A label that reads a name its own way (Japanese, for a name in kanji: Reading.own) is
        first scored on that reading (`score` gives the network's probabilities of readings).
        Names in plain ASCII are no evidence: their rows are returned as they were."""
        probabilities = self.with_own_readings(readings, probabilities, score)
        rows, likelihoods = [], []
        for row, reading in enumerate(readings):
            if reading.text.isascii():
                continue
            found = self.likelihoods(reading.text, reading.script)
            if found is not None:
                rows.append(row)
                likelihoods.append(found)
        if rows:
            probabilities[rows] = combine(probabilities[rows], np.asarray(likelihoods, dtype=probabilities.dtype))
        return probabilities

    def with_own_readings(self, readings: Sequence[Reading], probabilities: np.ndarray,
                          score: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """A copy of the (N, C) probabilities where, for a name a label reads its own way (Japanese
        kanji), that label's probability comes from that reading, the row renormalised. All the
        own readings are scored in one batch."""
        probabilities = probabilities.copy()
        cells = [(row, self.labels.index(label), text) for row, reading in enumerate(readings)
                 for label, text in reading.own if label in self.labels and text]
        if not cells:
            return probabilities
        scored = score([text for _, _, text in cells])  # (len(cells), C)
        for (row, column, _), own in zip(cells, scored):
            probabilities[row, column] = own[column]
        rows = sorted({row for row, _, _ in cells})
        probabilities[rows] /= probabilities[rows].sum(axis=1, keepdims=True)
        return probabilities


def learn(labels: Sequence[str], counts: dict[str, dict[str, int]]) -> dict:
    """The checkpoint's `scripts` entry: training names per label and script, and P(script | label)
    smoothed towards each script's share over all labels (add-one), SMOOTHING pseudo-names per label."""
    pooled = Counter()
    for label in labels:
        pooled.update(counts.get(label, {}))
    total = sum(pooled.values())
    share = {script: (pooled[script] + 1) / (total + len(S.SCRIPTS)) for script in S.SCRIPTS}
    probabilities = {}
    for label in labels:
        own = Counter(counts.get(label, {}))
        n = sum(own.values())
        probabilities[label] = {script: (own[script] + SMOOTHING * share[script]) / (n + SMOOTHING)
                                for script in S.SCRIPTS}
    return {"source": "training data", "smoothing": SMOOTHING,
            "counts": {label: dict(counts.get(label, {})) for label in labels}, "probabilities": probabilities}


def count_training_scripts(data: Path, labels: Sequence[str], train_names: Iterable[tuple[str, int]], seed: int,
                           alphabet: str) -> dict[str, Counter]:
    """Label -> Counter of scripts over the raw training names (each raw line whose reading is in
    the training split). A folder's names are the pairs of `train_names`; a CSV/TSV file's are
    the rows whose reading hashes into the training split."""
    from charclf.data.dataset import read_label_file
    from charclf.data.stream import detect_layout, raw_rows, split_of
    from charclf.names.reader import training_reading

    counts = {label: Counter() for label in labels}
    data = Path(data)
    if data.is_file():
        for _, name, label in raw_rows(data, detect_layout(data)):
            reading = training_reading(name, alphabet)
            if reading and label in counts and split_of(reading, seed) == "train":
                counts[label][S.detect_script(name)] += 1
        return counts
    train = set(train_names)
    for index, label in enumerate(labels):
        for line in read_label_file(data / f"{label}.txt"):
            if (training_reading(line, alphabet), index) in train:
                counts[label][S.detect_script(line)] += 1
    return counts
