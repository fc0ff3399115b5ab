"""Folded names -> the alphabet positions a network reads (numpy only: the light install uses it)."""

from __future__ import annotations

import numpy as np


class Letters:
    """Folded names -> int64 alphabet positions, lower-cased first when `lowercase` (as a model that
    reads Jones and JONES alike does). Every character must be in the alphabet."""

    def __init__(self, alphabet: str, lowercase: bool = False):
        self.lowercase = lowercase
        if alphabet.isascii():  # the usual case: one byte per letter, one table lookup for all
            self._bytes = np.zeros(128, dtype=np.int64)
            self._bytes[np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)] = np.arange(len(alphabet))
        else:
            self._bytes = None
            self._code = {ord(c): i for i, c in enumerate(alphabet)}

    def positions(self, text: str) -> np.ndarray:
        """Each character of `text` -> its int64 position."""
        if self.lowercase:
            text = text.lower()
        if self._bytes is not None:
            return self._bytes[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
        return np.fromiter((self._code[ord(c)] for c in text), dtype=np.int64, count=len(text))

    def same_length(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """B names of one length L -> ((B, L) int64 positions, (B,) int64 lengths)."""
        length = len(names[0])
        return self.positions("".join(names)).reshape(len(names), length), np.full(len(names), length, dtype=np.int64)
