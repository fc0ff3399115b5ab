"""Which writing system a name was typed in, from the Unicode names of its letters (no dependency
beyond unicodedata). The script is evidence of a name's origin that its Latin reading loses:
charclf.predict.evidence turns it into probabilities."""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter

LATIN = "Latin"
LATIN_DIACRITICS = "Latin with diacritics"  # any Latin letter outside ASCII: ä, ñ, ł, ß, ő ...
CYRILLIC, GREEK, ARABIC, HEBREW = "Cyrillic", "Greek", "Arabic", "Hebrew"
HAN, KANA, HANGUL = "Han", "kana", "Hangul"  # kana: hiragana or katakana, with or without kanji
DEVANAGARI, THAI, OTHER = "Devanagari", "Thai", "other"
SCRIPTS = (LATIN, LATIN_DIACRITICS, CYRILLIC, GREEK, ARABIC, HEBREW, HAN, KANA, HANGUL, DEVANAGARI, THAI, OTHER)

# The first word of a character's Unicode name (after HALFWIDTH / FULLWIDTH) -> its script.
_NAME_WORDS = {
    "LATIN": LATIN, "CYRILLIC": CYRILLIC, "GREEK": GREEK, "ARABIC": ARABIC, "HEBREW": HEBREW,
    "CJK": HAN, "IDEOGRAPHIC": HAN,  # CJK UNIFIED IDEOGRAPH-5C71; IDEOGRAPHIC ITERATION MARK (々)
    "HIRAGANA": KANA, "KATAKANA": KANA, "KATAKANA-HIRAGANA": KANA,  # ー, the prolonged sound mark
    "HANGUL": HANGUL, "DEVANAGARI": DEVANAGARI, "THAI": THAI,
}


def detect_script(name: str) -> str:
    """The script most of the name's letters are written in (one of SCRIPTS).

    Kana wins over Han whenever a name mixes them (山田はなこ): kana is only Japanese. A name in
    Latin letters is LATIN_DIACRITICS when any of them is outside ASCII. No letters: OTHER.

    >>> detect_script("김민준"), detect_script("Müller"), detect_script("Smith")
    ('Hangul', 'Latin with diacritics', 'Latin')
    """
    if name.isascii():  # the usual case, kept fast
        return LATIN if any(c.isalpha() for c in name) else OTHER
    composed = unicodedata.normalize("NFC", name)  # u + combining diaeresis -> ü
    counts = Counter(script_of(c) for c in composed if c.isalpha())
    counts.pop(None, None)
    if not counts:
        return OTHER
    if counts[KANA]:
        counts[KANA] += counts.pop(HAN, 0)
    script = max(counts, key=lambda s: (counts[s], s == LATIN))  # ties: Latin, the model's own letters
    if script == LATIN and any(not c.isascii() and script_of(c) == LATIN for c in composed):
        return LATIN_DIACRITICS
    return script


@functools.lru_cache(maxsize=4096)
def script_of(char: str) -> str | None:
    """One letter's script (OTHER for scripts not in SCRIPTS); None for a character without a name."""
    words = unicodedata.name(char, "").split()
    if not words:
        return None
    word = words[1] if words[0] in ("HALFWIDTH", "FULLWIDTH") and len(words) > 1 else words[0]
    return _NAME_WORDS.get(word, OTHER)


def latin_diacritics(name: str) -> set[str]:
    """The name's Latin letters outside ASCII, lower-cased and composed (NFC).

    >>> sorted(latin_diacritics("Straße Müller"))
    ['ß', 'ü']
    """
    if name.isascii():
        return set()
    return {c for c in unicodedata.normalize("NFC", name.lower()) if not c.isascii() and script_of(c) == LATIN}
