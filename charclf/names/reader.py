"""The one way a typed name becomes what the network reads. Every door (predict, files, tables,
the API, pandas, the engines, the server, explain, explain --gates) calls `read`.

name -> read(name) -> Reading: the text read (the name, or with full names its family name),
its script, the letters the network reads (as_read), caveats about that reading, the readings
some labels give it their own way (a name in kanji read in Japanese for the Japanese label), and
why there is nothing to read (problem), when that is so. What the network then answers is
charclf.predict's job; the script and the own readings are the evidence it combines with the
network's probabilities (charclf.predict.evidence)."""

from __future__ import annotations

from dataclasses import dataclass

from charclf.names.fullnames import FamilyName, family_name
from charclf.names.lines import TOO_LONG
from charclf.names.readings import ARABIC_GUESSED, HAN_BOTH_WAYS, arabic_reading, japanese_reading, korean_reading
from charclf.names.scripts import ARABIC, HAN, HANGUL, KANA, LATIN, LATIN_DIACRITICS, OTHER, detect_script
from charclf.names.text import CAVEATS, DEFAULT_ALPHABET, MAX_NAME_CHARS, fold, latin_reading, read_too_long

UNREADABLE = "no letters to read, even after transliteration to Latin"
EMPTY = "empty name"


@dataclass(slots=True)
class Reading:
    """A typed name as the network reads it."""

    name: str  # as typed
    text: str  # the part read: the name, or with full names its family name
    as_read: str  # the letters the network reads
    script: str = LATIN  # the writing system of `text` (charclf.names.scripts.SCRIPTS)
    caveats: tuple[str, ...] = ()  # where the Latin reading may mislead
    own: tuple[tuple[str, str], ...] = ()  # (label, its reading): labels that read `text` their own way
    family: FamilyName | None = None  # with full names: the family name found, and the rule
    problem: str | None = None  # why there is nothing for the network to read; None: readable

    @property
    def readable(self) -> bool:
        return self.problem is None


def read(name: str, alphabet: str = DEFAULT_ALPHABET, full_name: bool = False) -> Reading:
    """A typed name -> its Reading (see the module's text).

    >>> read("Иванов").as_read
    'Ivanov'
    >>> read("Kim Min-jun", full_name=True).text
    'Kim'
    """
    if len(name) > MAX_NAME_CHARS:  # the network's memory grows with the length
        return Reading(name, name, "", problem=TOO_LONG)
    family = family_name(name) if full_name else None
    text = family.part if family else name
    if text.isascii() and text.isalpha() and alphabet == DEFAULT_ALPHABET:  # most names (Smith): as they are
        return Reading(name, text, text, family=family)
    script = detect_script(text)
    as_read, caveats, own = _letters(text, script, alphabet)
    reading = Reading(name, text, as_read, script, tuple(caveats), own, family)
    if read_too_long(as_read):  # the network's work grows with the letters read
        reading.problem = read_too_long(as_read)
    elif not any(map(str.isalpha, as_read)):  # punctuation alone ("...", "'") is no name
        reading.problem = EMPTY if not name.strip() else UNREADABLE
    return reading


def _letters(text: str, script: str, alphabet: str) -> tuple[str, list[str], tuple[tuple[str, str], ...]]:
    """-> (as_read, caveats, own readings): the usual romanisation where charclf knows it (Hangul
    family names, Arabic, kana with the `japanese` extra), else the letter-by-letter Latin reading
    (charclf.names.text.latin_reading); a name in kanji also gets its Japanese reading, for the
    Japanese label."""
    usual = {HANGUL: korean_reading, KANA: japanese_reading, ARABIC: arabic_reading}.get(script)
    reading = usual(text) if usual else None
    if reading is not None:
        return latin_reading(reading, alphabet)[0], [ARABIC_GUESSED] if script == ARABIC else [], ()
    as_read, caveats = latin_reading(text, alphabet)
    japanese = japanese_reading(text) if script == HAN else None
    if not japanese:
        return as_read, caveats, ()
    japanese = latin_reading(japanese, alphabet)[0]
    both_ways = HAN_BOTH_WAYS.format(japanese)
    return as_read, [both_ways if caveat == CAVEATS["CJK"] else caveat for caveat in caveats], (("Japanese", japanese),)


def training_reading(line: str, alphabet: str = DEFAULT_ALPHABET) -> str:
    """How training reads one name of a dataset: names in Latin letters folded exactly as the
    tutorial does (so a Latin dataset reads as it always has); names in other scripts read as
    predict reads them, instead of being folded to nothing."""
    if detect_script(line) in (LATIN, LATIN_DIACRITICS, OTHER):
        return fold(line, alphabet)
    return read(line, alphabet).as_read


def listed_reading(line: str, label: str, alphabet: str = DEFAULT_ALPHABET) -> str:
    """How training reads a name that a list gives to `label` (charclf.data.extra): as
    training_reading does, except that a label with its own reading of the name reads it that way
    (a kanji family name listed as Japanese is read in Japanese, not letter by letter as Chinese);
    '' when the label needs that reading and none is available (kanji without the japanese extra)."""
    if detect_script(line) in (LATIN, LATIN_DIACRITICS, OTHER):
        return fold(line, alphabet)
    reading = read(line, alphabet)
    own = dict(reading.own)
    if label in own:
        return own[label]
    if reading.script == HAN and label == "Japanese":
        return ""
    return reading.as_read if reading.readable else ""


def prefix_readings(reading: Reading) -> list[Reading]:
    """A readable Reading of L letters -> L Readings, one per prefix of its letters (H, Hi, ...,
    Hinton), each with the whole name's script and caveats: how the answer forms letter by letter
    (charclf.predict.explain). A label's own reading (Japanese for kanji) is cut at the same share
    of its letters, so the last prefix is the Reading itself."""
    total = len(reading.as_read)
    prefixes = []
    for end in range(1, total + 1):
        own = tuple((label, text[:-(-len(text) * end // total)]) for label, text in reading.own)  # ceil share
        prefixes.append(Reading(reading.name, reading.text, reading.as_read[:end], reading.script, reading.caveats,
                                own, reading.family))
    return prefixes
