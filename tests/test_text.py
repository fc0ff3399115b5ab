import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from charclf.names.text import DEFAULT_ALPHABET, fold, latin_reading, transliterate


def test_alphabet_is_the_tutorials():
    assert len(DEFAULT_ALPHABET) == 57
    assert DEFAULT_ALPHABET.endswith(" .,;'")


def test_fold_drops_accents_the_tutorial_way():
    assert fold("Ślusàrski") == "Slusarski"
    assert fold("Müller") == "Muller"
    assert fold("Nguyễn") == "Nguyen"
    assert fold("O'Neal") == "O'Neal"


def test_fold_drops_what_the_alphabet_lacks():
    assert fold("Smith2/3:") == "Smith"
    assert fold("Иванов") == ""  # no Latin letters at all
    assert fold("😀") == ""
    assert fold("  Jones \n") == "Jones"


def test_fold_follows_a_custom_alphabet():
    assert fold("Abc", alphabet="abc") == "bc"


# Real names in other scripts, and how charclf reads them (anyascii, then the tutorial's folding).
READINGS = {
    "Иванов": "Ivanov",            # Cyrillic
    "Хрущёв": "Khrushchev",
    "Σαρρής": "Sarris",            # Greek
    "Παπαδόπουλος": "Papadopoulos",  # "ου" is read as one sound, not letter by letter ("oy")
    "محمد": "Mhmd",                # Arabic: vowels unwritten
    "כהן": "Khhn",                 # Hebrew: vowels unwritten
    "राहुल": "Rahul",               # Devanagari
    "김민준": "Gimminjun",           # Hangul, syllables joined and capitalised like the dataset's names
    "やまだ": "Yamada",             # hiragana
    "タナカ": "Tanaka",             # katakana
    "ヤマダ・タロウ": "Yamada Tarou",  # the katakana middle dot separates words
    "山田": "Shantian",             # Han, read as Mandarin
    "Müller": "Muller",            # Latin: the tutorial's folding, as in training
    "Straße": "Strasse",           # letters the folding would drop are transliterated instead
    "Łukasz": "Lukasz",
    "O’Brien": "O'Brien",          # typographic apostrophe
    "ИВАНОВ": "Ivanov",
}


@pytest.mark.parametrize("name, expected", READINGS.items())
def test_names_in_any_script_are_read_in_latin(name, expected):
    assert latin_reading(name)[0] == expected


@pytest.mark.parametrize("name, script", [("山田", "Han"), ("محمد", "Arabic"), ("כהן", "Hebrew"),
                                          ("김", "Hangul"), ("शर्मा", "Indic")])
def test_misleading_readings_come_with_a_caveat(name, script):
    [caveat] = latin_reading(name)[1]
    assert caveat.startswith(script)


@pytest.mark.parametrize("name", ["Иванов", "やまだ", "Nguyễn", "Jones"])
def test_faithful_readings_have_no_caveat(name):
    assert latin_reading(name)[1] == []


@pytest.mark.parametrize("name", ["😀", "12345", "١٢٣", "   ", "", "\x01"])
def test_symbols_and_digits_are_not_transliterated(name):
    assert latin_reading(name) == ("", [])  # anyascii would spell 😀 as ":grinning:"


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_reads_exactly_as_the_training_folding(text):
    assert latin_reading(text)[0] == fold(text)


@given(st.text())
def test_readings_stay_in_the_alphabet_and_are_stable(text):
    as_read, _ = latin_reading(text)
    assert set(as_read) <= set(DEFAULT_ALPHABET)
    assert latin_reading(as_read) == (as_read, [])  # reading a reading changes nothing


def test_the_ascii_shortcut_folds_like_the_general_path():
    import unicodedata

    def general(name, alphabet):
        decomposed = unicodedata.normalize("NFD", name)
        return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and c in set(alphabet)).strip()

    for name in ["Smith2/3:", "  Jones \n", "O'Neal", "\t\x00Ab-c;d ", "x y", "...", ""]:
        for alphabet in (DEFAULT_ALPHABET, "abc", "ab "):
            assert fold(name, alphabet) == general(name, alphabet)


# Mostly what the shortcut must get right (accented Latin, spaces of all kinds, marks, digits,
# symbols), with the characters that must not take it (ß, ł, ø, Greek, Cyrillic, punctuation).
LATIN_AND_MORE = st.text(alphabet=st.one_of(
    st.sampled_from("abcXYZ .,;'éüÁñçŠžőĕǎẹễ \u00a0\u2003\t\n\u0301\u0308019€😀-’ßłøæΣουИ"),
    st.characters(max_codepoint=0x24F)))


@settings(max_examples=500)
@given(LATIN_AND_MORE)
@example("é\u00a0b")
@example("Jan  Nováček ")
@example("Nguyễn\tVăn")
@example("Zoë-Ann")
@example("Øster 2")
def test_the_latin_shortcut_reads_as_the_general_way(text):
    """latin_reading's shortcut for accented Latin names changes no reading of a non-ASCII name."""
    if not text.isascii():
        assert latin_reading(text) == transliterate(text)
