"""Full names: which part is the family name, the part the model was trained on.

The rule, in order (the first that applies wins):
1. a comma: the part before it ("Hinton, Geoffrey" -> Hinton);
2. Hangul, Han or kana (customarily family name first): the first word when there are several
   ("山田 太郎" -> 山田); written solid, the first syllable of a Korean name, or two for the
   two-syllable family names (김민준 -> 김, 남궁민준 -> 남궁), the first character of a
   three-character Han name, or two of a four-character one starting with a compound family
   name (王小明 -> 王, 欧阳小明 -> 欧阳); other Han or kana written solid is kept whole
   (a Japanese family name has no fixed length, and two characters may be the family name alone);
3. Latin letters, family name first when the first word is a common Vietnamese, Korean or Chinese
   family name and, in a two-word name, the last is not ("Nguyen Van An" -> Nguyen, "Kim Jong Un"
   -> Kim, "Bruce Lee" -> Lee, "Mai Nguyen" -> Nguyen);
4. otherwise the last word, with the particles before it (van, von, de, da, del, della, di, du,
   la, le, bin, ibn, al, ...): "Ludwig van Beethoven" -> van Beethoven, "Geoffrey Hinton" -> Hinton.
One word is the family name itself.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

PARTICLES = frozenset(
    "van von de da del della dalla dei degli di do dos das du la le lo der den ter ten te zu af av "
    "bin binti ibn bint al el ben st st. saint mac".split()
)
# Common family names written first by custom, as they are spelled in Latin letters.
FAMILY_FIRST = frozenset(
    # Vietnamese
    "nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly trinh dinh mai "
    # Korean
    "kim lee yi park pak choi choe jung jeong chung kang cho jo yoon yun jang chang lim im han oh shin "
    "seo suh kwon hwang ahn an song yoo ryu hong jeon moon mun yang ko koh baek nam "
    # Chinese
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin luo gao zheng liang "
    "xie song tang deng feng cao peng zeng xiao tian dong pan yuan cai jiang yu du ye cheng wei su "
    "lu ding shen ren yao jin".split()
)
KOREAN_TWO_SYLLABLE = frozenset("남궁 황보 제갈 선우 독고 사공 서문 동방 어금 망절".split())
CHINESE_COMPOUND = frozenset("欧阳 歐陽 司马 司馬 诸葛 諸葛 上官 东方 東方 皇甫 尉迟 尉遲 公孙 公孫 令狐 慕容 夏侯 "
                             "长孙 長孫".split())


@dataclass(frozen=True, slots=True)
class FamilyName:
    part: str  # what the model should read
    rule: str  # which rule chose it, in a few words


def family_name(full: str) -> FamilyName:
    """The family-name part of a full name, and the rule that chose it (see the module's text)."""
    text = " ".join(full.split())
    if "," in text:
        before = text.split(",", 1)[0].strip()
        if before:
            return FamilyName(before, "before the comma")
    words = text.split(" ")
    script = _east_asian_script(text)
    if script:
        return _family_first(words, script)
    if len(words) == 1:
        return FamilyName(text, "one word")
    first, last = words[0].lower(), words[-1].lower()
    if first in FAMILY_FIRST and (last not in FAMILY_FIRST or len(words) > 2):
        return FamilyName(words[0], "family name first (a common East Asian family name)")
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in PARTICLES:  # keep at least one given name
        start -= 1
    rule = "the last word with its particles" if start < len(words) - 1 else "the last word"
    return FamilyName(" ".join(words[start:]), rule)


def _east_asian_script(text: str) -> str | None:
    """hangul, han or kana when the name's letters are written in them (kana wins over han)."""
    found = set()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if name.startswith("HANGUL"):
                found.add("hangul")
            elif name.startswith(("HIRAGANA", "KATAKANA")):
                found.add("kana")
            elif name.startswith("CJK"):
                found.add("han")
            else:
                return None  # mixed with another script: treat it as that
    return "kana" if "kana" in found else (found.pop() if len(found) == 1 else None)


def _family_first(words: list[str], script: str) -> FamilyName:
    if len(words) > 1:
        return FamilyName(words[0], "the first word (family name first in this script)")
    word = words[0]
    if script == "hangul" and len(word) >= 3:
        size = 2 if word[:2] in KOREAN_TWO_SYLLABLE else 1
        return FamilyName(word[:size], "the first syllable(s) of a Korean name")
    compound = word[:2] in CHINESE_COMPOUND
    if script == "han" and len(word) == (4 if compound else 3):  # a Chinese full name's length
        size = 2 if compound else 1
        return FamilyName(word[:size], "the first character(s) of a Chinese name")
    return FamilyName(word, "the whole name (written solid)")
