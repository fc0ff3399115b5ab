"""Turning raw name strings into the letters the model reads (no torch here)."""

from __future__ import annotations

import string
import unicodedata
from functools import lru_cache

# The tutorial's alphabet: ASCII letters plus a few punctuation marks seen in names.
# It is stored in every checkpoint, so a model always reads names the way it was trained.
DEFAULT_ALPHABET = string.ascii_letters + " .,;'"


def fold(name: str, alphabet: str = DEFAULT_ALPHABET) -> str:
    """Fold a name to the alphabet the tutorial's way: NFD, drop combining marks, drop the rest.

    >>> fold("Ślusàrski")
    'Slusarski'
    """
    if name.isascii():  # the usual case: NFD changes no ASCII text and ASCII has no combining marks
        return name.translate(_ascii_drops(alphabet)).strip()
    allowed = set(alphabet)
    decomposed = unicodedata.normalize("NFD", name)
    # Strip last: dropped characters can leave edge spaces ("12 Smith" -> " Smith").
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and c in allowed).strip()


@lru_cache(maxsize=8)
def _ascii_drops(alphabet: str) -> dict[int, None]:
    """str.translate table deleting every ASCII character that `alphabet` lacks."""
    return {code: None for code in range(128) if chr(code) not in alphabet}
