"""The memory experiment's settings, as a plain dataclass (no torch, so `charclf lab memory --help`
can show the defaults without importing it). The defaults were chosen by measurement
(docs/learn.md): the whole run takes about two minutes on two CPU cores, and shows the plain
RNN at chance at distances where the LSTM and the GRU still answer."""

from __future__ import annotations

from dataclasses import dataclass

from charclf.config import ARCHS

# The most numbers one step of the experiment holds per tensor: sequences x time steps x width (a
# cell keeps a few such tensors per step for the gradients: about 2 GB of float32 at this size).
MAX_CELLS = 1 << 25


@dataclass
class MemoryConfig:
    # How many distractor letters follow the letter that decides the label.
    distances: tuple[int, ...] = (5, 10, 25, 50, 100)
    archs: tuple[str, ...] = ("rnn", "lstm", "gru")  # the order of the table's columns
    labels: int = 4  # the first letter is one of the first `labels` letters; it is the label
    letters: int = 10  # the alphabet the sequences are drawn from (one-hot rows of this width)
    hidden_size: int = 32  # the same for every backbone
    batch_size: int = 64
    lr: float = 3e-3  # Adam's
    steps: int = 1500  # the most training steps of one backbone at one distance
    # Every `check_every` steps the model answers a validation set; training stops once it
    # reaches `target` accuracy there (a model that has learnt the task needs no more steps).
    check_every: int = 50
    target: float = 0.99
    clip_grad_norm: float = 1.0  # exploding gradients, the other half of the lesson, are clipped
    # Added to the biases of the LSTM's forget gate and the GRU's update gate at the start, so
    # that both begin by keeping what they hold (0: torch's initialisation).
    gate_bias: float = 5.0
    seed: int = 0  # the weights, the training sequences; the test sequences use seed + 1
    test_size: int = 1000  # sequences each trained model is scored on
    gradient_size: int = 256  # sequences the gradient at each time step is averaged over

    def __post_init__(self):
        if not self.distances or min(self.distances) < 1:
            raise ValueError("distances must be whole numbers, at least 1")
        unknown = set(self.archs) - set(ARCHS)
        if unknown or not self.archs:
            raise ValueError(f"archs must be some of {', '.join(ARCHS)}, got {', '.join(self.archs) or 'none'}")
        if not 2 <= self.labels <= self.letters:
            raise ValueError(f"labels must be from 2 to letters ({self.letters}), got {self.labels}")
        for name in ("hidden_size", "batch_size", "steps", "check_every", "test_size", "gradient_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        sequences = max(self.batch_size, self.test_size, self.gradient_size)
        cells = sequences * (max(self.distances) + 1) * max(self.hidden_size, self.letters)
        if cells > MAX_CELLS:
            longest = MAX_CELLS // (sequences * max(self.hidden_size, self.letters)) - 1
            raise ValueError(f"distance {max(self.distances)} is too long for {sequences} sequences of width "
                             f"{max(self.hidden_size, self.letters)}: at most {longest} (the memory it would need)")

    @property
    def chance(self) -> float:
        """The accuracy of a guess: the labels are equally common."""
        return 1 / self.labels
