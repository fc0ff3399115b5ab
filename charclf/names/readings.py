"""Readings of names the way names in their script are usually spelt in Latin letters, where a
letter-by-letter transliteration (anyascii, charclf.names.text) spells them otherwise
(charclf.names.reader.read chooses among them by the name's script):

- Hangul: the family name as Koreans romanise it (김 Kim, 이 Lee, 박 Park), not in Revised
  Romanization (Gim, I, Bak); the given name stays in Revised Romanization (김민준 -> Kim Minjun).
- Arabic: the letters as the dataset's Arabic names spell them, a short `a` guessed between two
  consonants (حسن -> Hasan, not Hsn).
- kana, and kanji for the Japanese label: Hepburn, written without long vowels as the names are
  usually spelt (佐藤 -> Sato, 大野 -> Ono), by pykakasi when the `japanese` extra is installed.
  Without it, kana is read by anyascii (which already reads it in Hepburn-like syllables) and
  kanji only as Mandarin.
"""

from __future__ import annotations

import functools
import re
import unicodedata

ARABIC_GUESSED = "Arabic script leaves short vowels unwritten: they are guessed as a"
HAN_BOTH_WAYS = "Han characters are read as Mandarin pinyin, and a Japanese name in kanji as {} for the Japanese label"

# The common Korean family names, as they are usually spelt in Latin letters.
KOREAN_SURNAMES = {
    "김": "Kim", "이": "Lee", "박": "Park", "최": "Choi", "정": "Jung", "강": "Kang", "조": "Cho", "윤": "Yoon",
    "장": "Jang", "임": "Lim", "한": "Han", "오": "Oh", "서": "Seo", "신": "Shin", "권": "Kwon", "황": "Hwang",
    "안": "Ahn", "송": "Song", "전": "Jeon", "홍": "Hong", "유": "Yoo", "고": "Ko", "문": "Moon", "양": "Yang",
    "손": "Son", "배": "Bae", "백": "Baek", "허": "Heo", "노": "Noh", "남": "Nam", "심": "Shim", "하": "Ha",
    "곽": "Kwak", "성": "Sung", "차": "Cha", "주": "Joo", "우": "Woo", "구": "Koo", "민": "Min", "류": "Ryu",
    "나": "Na", "진": "Jin", "지": "Ji", "엄": "Um", "채": "Chae", "원": "Won", "천": "Chun", "방": "Bang",
    "공": "Kong", "현": "Hyun", "함": "Ham", "변": "Byun", "염": "Yeom", "여": "Yeo", "추": "Choo", "도": "Do",
    "소": "So", "석": "Seok", "선": "Sun", "설": "Seol", "마": "Ma", "길": "Gil", "연": "Yeon", "위": "Wi",
    "표": "Pyo", "명": "Myung", "기": "Ki", "반": "Ban", "라": "Ra", "왕": "Wang", "금": "Keum", "옥": "Ok",
    "육": "Yook", "인": "In", "맹": "Maeng", "제": "Je", "모": "Mo", "탁": "Tak", "국": "Kook", "어": "Eo",
    "은": "Eun", "편": "Pyeon", "용": "Yong", "예": "Ye", "경": "Kyung", "봉": "Bong", "태": "Tae", "목": "Mok",
    "형": "Hyung", "피": "Pi", "두": "Doo", "감": "Kam", "음": "Eum", "빈": "Bin", "동": "Dong", "호": "Ho",
    "범": "Bum", "승": "Seung", "상": "Sang", "갈": "Kal", "독고": "Dokgo", "남궁": "Namgoong",
    "황보": "Hwangbo", "제갈": "Jegal", "선우": "Sunwoo", "서문": "Seomun", "사공": "Sagong",
}


def korean_reading(name: str) -> str | None:
    """'김민준' -> 'Kim Minjun': each Hangul word's family name from KOREAN_SURNAMES (a two-syllable
    one only when a given name follows), the rest in Revised Romanization; None when no word
    starts with a family name in the table."""
    from anyascii import anyascii

    words, found = [], False
    for word in name.split():
        # A two-syllable family name only before a given name (남궁민수 Namgoong Minsu): 선우 is Sun Woo.
        surname = next((s for s in (word[:2], word[:1]) if s in KOREAN_SURNAMES and (len(s) == 1 or len(word) > 2)),
                       None)
        if surname is None:
            words.append(anyascii(word).capitalize())
            continue
        found = True
        given = anyascii(word[len(surname):]).capitalize()
        words.append(f"{KOREAN_SURNAMES[surname]} {given}".strip())
    return " ".join(words) if found else None


# Arabic letters as the dataset's Arabic names spell them (Haddad, Mansour, Khoury, Nassar). The
# long vowels ا و ي are written; the short vowels usually are not and are read as `a` (charclf reads
# حسن as Hasan, not Hsn). None: a vowel letter (handled in arabic_reading).
ARABIC_LETTERS = {
    "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ذ": "dh", "ر": "r", "ز": "z",
    "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "", "غ": "gh", "ف": "f", "ق": "q",
    "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "ء": "", "ئ": "", "ؤ": "",
    "ة": None, "ا": None, "أ": None, "إ": None, "آ": None, "ى": None, "و": None, "ي": None,
}
ARABIC_VOWELS = {"ة": "a", "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ى": "a", "و": "ou", "ي": "i"}
SHADDA = "\u0651"


def arabic_reading(name: str) -> str | None:
    """'حسن' -> 'Hasan', 'منصور' -> 'Mansour', 'الخوري' -> 'Khouri': the letters of ARABIC_LETTERS,
    `a` between two consonants, و and ي as consonants (w, y) at the start of a word and as vowels
    (ou, i) elsewhere, the article ال left out as the names are usually filed; None when a word
    has a letter outside the table."""
    words = []
    for word in unicodedata.normalize("NFC", name).split():
        word = "".join(c for c in word if c == SHADDA or unicodedata.category(c) != "Mn")  # short-vowel marks
        if word.startswith("ال") and len(word) > 3:
            word = word[2:]
        parts, after_consonant = [], False
        for i, c in enumerate(word):
            if c == SHADDA:
                parts.append(parts[-1][-1:] if parts else "")
                continue
            if c not in ARABIC_LETTERS:
                return None
            consonant = ARABIC_LETTERS[c] is not None or (c in "وي" and i == 0)
            if not consonant:
                parts.append(ARABIC_VOWELS[c])
            else:
                if after_consonant:
                    parts.append("a")
                parts.append(ARABIC_LETTERS[c] if ARABIC_LETTERS[c] is not None else {"و": "w", "ي": "y"}[c])
            after_consonant = consonant
        words.append("".join(parts).capitalize())
    return " ".join(words) or None


def japanese_reading(name: str) -> str | None:
    """A Japanese name (kana or kanji) in Hepburn without long vowels, capitalised per word
    ('佐藤 健' -> 'Sato Takeshi'); None without pykakasi, or when it cannot read a character (such
    as a simplified Chinese one: 张)."""
    kakasi = _kakasi()
    if kakasi is None:
        return None
    words = []
    for word in unicodedata.normalize("NFKC", name).replace("・", " ").split():
        syllables = [item["hepburn"] for item in kakasi.convert(word)]
        if not all(syllables):
            return None
        words.append(plain_hepburn("".join(syllables)).capitalize())
    return " ".join(words) or None


def plain_hepburn(text: str) -> str:
    """Long vowels written as names usually are: satou -> sato, oono -> ono, yuuki -> yuki; a vowel
    pair before another vowel is two syllables and kept (inoue)."""
    return re.sub(r"(o)[ou](?![aeiou])|(u)u(?![aeiou])", lambda m: m.group(1) or m.group(2), text)


@functools.lru_cache(maxsize=1)
def _kakasi():
    """pykakasi's converter (its dictionaries load once, in about a second), or None when not installed."""
    try:
        import pykakasi
    except ImportError:
        return None
    return pykakasi.kakasi()
