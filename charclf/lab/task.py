"""The long-dependency task: a sequence's label is its first letter, then `distance` distractor
letters follow; the answer is read after the last one, so the network must carry the first
letter across all of them."""

from __future__ import annotations

import torch
from torch import nn


def memory_batch(generator: torch.Generator, size: int, distance: int, labels: int,
                 letters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ((size, distance + 1, letters) one-hot sequences, (size,) labels). The first letter is
    one of the first `labels` letters of the alphabet (its index is the label); the distractors
    are drawn uniformly from all `letters`, the label's own letters included."""
    answer = torch.randint(0, labels, (size,), generator=generator)
    sequence = torch.randint(0, letters, (size, distance + 1), generator=generator)
    sequence[:, 0] = answer
    return nn.functional.one_hot(sequence, letters).float(), answer
