"""Compare Python transliteration libraries on real names in several scripts (docs/transliteration.md).

Run it in an environment with the candidates installed, e.g.
    pip install anyascii unidecode text-unidecode transliterate uroman
    python scripts/compare_transliterators.py
Candidates that are not installed are left out of the table.
"""

from __future__ import annotations

# (name, script, the romanisation people use for it)
NAMES = [
    ("Иванов", "Cyrillic", "Ivanov"), ("Хрущёв", "Cyrillic", "Khrushchev"),
    ("Σαρρής", "Greek", "Sarris"), ("Παπαδόπουλος", "Greek", "Papadopoulos"),
    ("محمد", "Arabic", "Muhammad"), ("حداد", "Arabic", "Haddad"),
    ("כהן", "Hebrew", "Cohen"), ("לוי", "Hebrew", "Levi"),
    ("शर्मा", "Devanagari", "Sharma"), ("राहुल", "Devanagari", "Rahul"),
    ("김", "Hangul", "Kim"), ("박", "Hangul", "Park"),
    ("やまだ", "hiragana", "Yamada"), ("タナカ", "katakana", "Tanaka"),
    ("山田", "Han (Japanese)", "Yamada"), ("王", "Han (Chinese)", "Wang"),
    ("Nguyễn", "Latin", "Nguyen"), ("Straße", "Latin", "Strasse"), ("Łukasz", "Latin", "Lukasz"),
]


def candidates():
    found = {}
    try:
        from anyascii import anyascii
        found["anyascii (ISC)"] = anyascii
    except ImportError:
        pass
    try:
        from unidecode import unidecode
        found["Unidecode (GPL-2.0+)"] = unidecode
    except ImportError:
        pass
    try:
        from text_unidecode import unidecode as text_unidecode
        found["text-unidecode (Artistic / GPL)"] = text_unidecode
    except ImportError:
        pass
    try:
        from transliterate import translit
        from transliterate.exceptions import LanguageDetectionError

        def guess_language(name):
            try:
                return translit(name, reversed=True)
            except LanguageDetectionError:
                return "(no language pack)"
        found["transliterate (GPL-2.0 / LGPL-2.1)"] = guess_language
    except ImportError:
        pass
    try:
        import uroman
        romanizer = uroman.Uroman()
        found["uroman (USC ISI licence)"] = romanizer.romanize_string
    except ImportError:
        pass
    return found


def main():
    tools = candidates()
    print("| name | script | usual | " + " | ".join(tools) + " |")
    print("|---|---|---|" + "---|" * len(tools))
    for name, script, usual in NAMES:
        cells = []
        for fn in tools.values():
            try:
                cells.append(str(fn(name)).strip())
            except Exception as e:  # a candidate failing on a script is a result too
                cells.append(f"({type(e).__name__})")
        print(f"| {name} | {script} | {usual} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
