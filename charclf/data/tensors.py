"""Names -> the tensors a torch network reads: letter positions, one-hot rows, padded batches."""

from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F

from charclf.data.letters import Letters
from charclf.names.text import DEFAULT_ALPHABET


def letter_indices(name: str, alphabet: str) -> torch.Tensor:
    """'Jones' -> (5,) int64 positions in the alphabet; the name must already be folded."""
    return torch.from_numpy(_letters(alphabet).positions(name))


def encode(name: str, alphabet: str = DEFAULT_ALPHABET) -> torch.Tensor:
    """'Jones' -> (5, len(alphabet)) float one-hot rows, one per letter."""
    return F.one_hot(letter_indices(name, alphabet), len(alphabet)).float()


def index_batch(names: Sequence[str], alphabet: str, lowercase: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """B folded names -> ((B, T) int64 letter positions, 0-padded; (B,) lengths), in one pass
    over all their letters: no tensor per name. `lowercase`: read as lower case (Letters)."""
    lengths = torch.tensor([len(name) for name in names], dtype=torch.long)
    padded = torch.zeros(len(names), int(lengths.max()) if len(names) else 0, dtype=torch.long)
    # Row-major order of the mask is name after name, letter after letter: the joined string's.
    positions = _letters(alphabet, lowercase).positions("".join(names))
    padded[torch.arange(padded.shape[1]) < lengths[:, None]] = torch.from_numpy(positions)
    return padded, lengths


@functools.lru_cache(maxsize=8)
def _letters(alphabet: str, lowercase: bool = False) -> Letters:
    return Letters(alphabet, lowercase)
