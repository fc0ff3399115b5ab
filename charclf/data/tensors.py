"""Names -> the tensors a torch network reads: letter positions, one-hot rows, padded and packed batches."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from charclf.names.text import DEFAULT_ALPHABET


def letter_indices(name: str, alphabet: str) -> torch.Tensor:
    """'Jones' -> (5,) int64 positions in the alphabet; the name must already be folded."""
    return _positions(name, alphabet)


def encode(name: str, alphabet: str = DEFAULT_ALPHABET) -> torch.Tensor:
    """'Jones' -> (5, len(alphabet)) float one-hot rows, one per letter."""
    return F.one_hot(letter_indices(name, alphabet), len(alphabet)).float()


def index_batch(names: Sequence[str], alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
    """B folded names -> ((B, T) int64 letter positions, 0-padded; (B,) lengths), in one pass
    over all their letters: no tensor per name."""
    lengths = torch.tensor([len(name) for name in names], dtype=torch.long)
    padded = torch.zeros(len(names), int(lengths.max()) if len(names) else 0, dtype=torch.long)
    # Row-major order of the mask is name after name, letter after letter: the joined string's.
    padded[torch.arange(padded.shape[1]) < lengths[:, None]] = _positions("".join(names), alphabet)
    return padded, lengths


def _positions(text: str, alphabet: str) -> torch.Tensor:
    """Each character of `text` (all in the alphabet) -> its int64 position in the alphabet."""
    if not text:
        return torch.zeros(0, dtype=torch.long)
    if alphabet.isascii():  # the usual case: one byte per letter, one table lookup for all
        table = torch.zeros(128, dtype=torch.long)
        table[torch.tensor([ord(c) for c in alphabet])] = torch.arange(len(alphabet))
        return table[torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8).long()]
    lookup = {c: i for i, c in enumerate(alphabet)}
    return torch.tensor([lookup[c] for c in text], dtype=torch.long)


def pack_batch(padded: torch.Tensor, lengths: torch.Tensor, n_letters: int | None) -> PackedSequence:
    """(B, T) letter positions and (B,) lengths -> one PackedSequence of (len_i, n_letters) one-hot
    rows (n_letters=None: of the letter positions themselves, for a model with an embedding)."""
    rows = padded if n_letters is None else F.one_hot(padded, n_letters).float()  # (B, T[, n_letters])
    return pack_padded_sequence(rows, lengths, batch_first=True, enforce_sorted=False)
