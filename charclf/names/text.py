"""Folding and letter-by-letter transliteration to the model's alphabet: the steps that
charclf.names.reader.read (the one reader of typed names) builds on (no torch here)."""

from __future__ import annotations

import functools
import string
import unicodedata

# The tutorial's alphabet: ASCII letters plus a few punctuation marks seen in names.
# It is stored in every checkpoint, so a model always reads names the way it was trained.
DEFAULT_ALPHABET = string.ascii_letters + " .,;'"

# The longest name charclf reads (predicting, training): the network's memory grows with a name's
# length, and real names are far shorter. A longer line is an error of its own line.
MAX_NAME_CHARS = 1000
# The most letters a name may read as: transliteration can read one character as many letters
# (U+FDFA as 27), and the network's work grows with the letters it reads, not the characters typed.
MAX_READ_LETTERS = MAX_NAME_CHARS

# Scripts whose Latin reading is known to mislead, keyed by the start of their characters'
# Unicode names; the note goes into the prediction's reason.
CAVEATS = {
    "CJK": "Han characters are read as Mandarin pinyin, so a Japanese name in kanji loses its Japanese reading",
    "ARABIC": "Arabic script leaves most vowels unwritten, so the reading lacks them",
    "HEBREW": "Hebrew script leaves most vowels unwritten, so the reading lacks them",
    "HANGUL": "Hangul is read in Revised Romanization, not the usual spellings of names (Gim, not Kim)",
    **dict.fromkeys(
        ("DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA", "MALAYALAM"),
        "Indic scripts are read letter by letter, often without their inherent vowels (Srma for Sharma)",
    ),
}

# Greek "ου" is one sound, written "ou" in every romanisation of names (Papadopoulos).
GREEK_DIGRAPHS = {"ου": "ou", "ού": "ou", "Ου": "Ou", "Ού": "Ou", "ΟΥ": "OU", "ΟΎ": "OU"}


def label_problem(label: object) -> str | None:
    """Why `label` cannot name a class, or None: a label is a non-empty string of printable
    characters (a model file refuses others, so training checks its labels before it starts)."""
    if not isinstance(label, str) or not label.strip():
        return "it is empty"
    odd = next((c for c in label if not c.isprintable()), None)
    return None if odd is None else f"it holds an unprintable character (U+{ord(odd):04X})"


def fold(name: str, alphabet: str = DEFAULT_ALPHABET) -> str:
    """Fold a name to the alphabet the tutorial's way: NFD, drop combining marks, drop the rest.
    This is how the dataset is read for training and evaluation.

    >>> fold("Ślusàrski")
    'Slusarski'
    """
    if name.isascii():  # the usual case: NFD changes no ASCII text and ASCII has no combining marks
        if name.isalpha() and alphabet == DEFAULT_ALPHABET:  # letters only (Smith): nothing to drop
            return name
        return name.translate(_ascii_deletions(alphabet)).strip()
    allowed = set(alphabet)
    decomposed = unicodedata.normalize("NFD", name)
    # Strip last: dropped characters can leave edge spaces ("12 Smith" -> " Smith").
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and c in allowed).strip()


def read_too_long(as_read: str) -> str | None:
    """Why a name's reading is too long for the network (more than MAX_READ_LETTERS letters), else
    None. The one bound on letters read, for every way in: files, tables, the API, the server."""
    if len(as_read) <= MAX_READ_LETTERS:
        return None
    return (f"it reads as {len(as_read):,} letters after transliteration, more than the {MAX_READ_LETTERS:,} a "
            "name may have")


def latin_reading(name: str, alphabet: str = DEFAULT_ALPHABET) -> tuple[str, list[str]]:
    """A name read letter by letter in the model's alphabet, and caveats about that reading
    (charclf.names.reader.read uses it, after the usual romanisations of charclf.names.readings).

    Characters the tutorial's folding keeps are read as in training; other letters, marks
    and punctuation are transliterated to Latin first (anyascii), so names in any script
    can be read. A word written wholly in another script is capitalised like the dataset's
    names. Symbols, emoji and digits are dropped.

    >>> latin_reading("Иванов")
    ('Ivanov', [])
    >>> latin_reading("O’Brien")
    ("O'Brien", [])
    """
    if name.isascii():  # the common case, kept fast: fold() has an ASCII shortcut
        return fold(name, alphabet), []
    allowed = _letter_set(alphabet)
    if all(c in allowed or c.isspace() or unicodedata.category(c)[0] in "MNS" for c in name):
        # Latin letters with accents, digits and symbols only (Müller): what the general way
        # below gives, faster (a test checks that the two agree).
        return fold(" ".join(name.split()), alphabet), []
    return transliterate(name, alphabet)


def transliterate(name: str, alphabet: str = DEFAULT_ALPHABET) -> tuple[str, list[str]]:
    """latin_reading() the general way, one character at a time."""
    from anyascii import anyascii

    words, caveats = [], []
    normalized = unicodedata.normalize("NFC", name)
    for greek, latin in GREEK_DIGRAPHS.items():  # anyascii reads letter by letter: ου -> oy
        normalized = normalized.replace(greek, latin)
    for word in normalized.split():
        parts, native = [], False
        for c in word:
            kept = fold(c, alphabet)
            if kept or unicodedata.category(c)[0] not in "LMP":  # symbols, digits, controls: dropped
                parts.append(kept)
                native = native or kept.isalpha()
                continue
            latin = anyascii(c)
            if unicodedata.category(c)[0] == "P" and not set(latin) & set(alphabet):
                latin = " "  # a separator such as the katakana middle dot: keep the words apart
            parts.append(latin)
            caveat = CAVEATS.get(unicodedata.name(c, "").split(" ")[0].split("-")[0])
            if caveat and caveat not in caveats:
                caveats.append(caveat)
        text = "".join(parts)
        words.append(text if native else " ".join(w.capitalize() for w in text.split()))  # GimMinJun -> Gimminjun
    return fold(" ".join(words), alphabet), caveats


@functools.lru_cache(maxsize=8)
def _letter_set(alphabet: str) -> frozenset[str]:
    """The alphabet's characters, and the precomposed Latin letters that fold to one of them (ü -> u)."""
    letters = set(alphabet)
    # Latin-1 Supplement, Latin Extended-A and -B, Latin Extended Additional (Vietnamese).
    for code in [*range(0x80, 0x250), *range(0x1E00, 0x1F00)]:
        base, *marks = unicodedata.normalize("NFD", chr(code))
        if marks and base in alphabet and all(unicodedata.category(m) == "Mn" for m in marks):
            letters.add(chr(code))
    return frozenset(letters)


@functools.lru_cache(maxsize=8)
def _ascii_deletions(alphabet: str) -> dict[int, None]:
    """str.translate table deleting every ASCII character outside `alphabet`."""
    return {code: None for code in range(128) if chr(code) not in alphabet}
