"""The classifier: a recurrent backbone (RNN, LSTM or GRU) over embedded (or one-hot) letters,
pooled over all letters, then a linear head; optionally, per-label spelling heads on the same
per-letter states (charclf.models.spelling). Nothing else is inside it.

Learning how it works? Start with the textbook cells in charclf/lab/: textbook.py is this network
at its plainest (one-hot letters, one layer, one direction, the answer from the last state: the
PyTorch tutorial's, `charclf train --preset tutorial`), cells.py re-runs torch's RNN, LSTM and GRU
cells one letter at a time with their equations' names, and gates.py shows a trained model's gates
(`charclf explain NAME --gates`). `charclf compare --ladder` adds this module's parts to the
tutorial's network one at a time; docs/learn.md says what each one buys."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from charclf.config import ModelConfig
from charclf.data.letters import Letters
from charclf.data.tensors import index_batch
from charclf.errors import DeviceError
from charclf.models.spelling import SpellingHeads, combined

# One table drives the model and the CLI's --model choices (config.ARCHS, kept equal by a test).
BACKBONES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class NameClassifier(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        if config.embedding_dim:  # the same as one-hot x W, without the one-hot matmul
            self.embed = nn.Embedding(config.n_letters, config.embedding_dim)
        self.rnn = BACKBONES[config.arch](
            input_size=config.embedding_dim or config.n_letters,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            # torch applies dropout only between stacked layers.
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        directions = 2 if config.bidirectional else 1
        width = config.hidden_size * directions * (1 if config.pooling in ("last", "max") else 2)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, config.n_classes)
        self.spelling = SpellingHeads(config.hidden_size, config.spelling_rank, config.n_classes, config.n_letters,
                                      config.lowercase, config.bidirectional, config.spelling_normalised) \
            if config.spelling_weight else None

    def index(self, names: Sequence[str], alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
        """B folded names -> ((B, T) letter positions, (B,) lengths), as this model reads them
        (lower-cased when config.lowercase: Jones and JONES are then one input)."""
        return index_batch(names, alphabet, self.config.lowercase)

    def letters(self, alphabet: str) -> Letters:
        """How this model turns folded names into letter positions (numpy), for prediction."""
        return Letters(alphabet, self.config.lowercase)

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) letter positions, 0-padded after each name's end, and (B,) lengths (on the CPU) ->
        (B, n_classes) logits: what training, prediction and the exported graph all run."""
        outputs = self.read(letters, lengths)
        logits = self.classify(outputs, lengths)
        return logits if self.spelling is None else self.with_spelling(logits, outputs, letters, lengths)

    def read(self, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) letter positions and (B,) lengths -> (B, T, directions * H) per-letter outputs, zero
        after each name's end.

        Names of unequal lengths are packed, so that no direction reads padding (the exported graph:
        one ONNX GRU/LSTM/RNN node given each name's length). When every name has T letters and no
        gradient is wanted (how prediction batches them) there is nothing to pack: the same numbers
        to a few 1e-7, sooner. A training step always packs, as it always has, so that a run's
        numbers stay what they were to the last bit."""
        if not padded(letters, lengths) and not torch.is_grad_enabled():  # predicting: nothing to pack
            outputs, _ = self.rnn(self.letter_rows(letters))  # (B, T, E) in
        else:
            packed = self.packed_rows(letters, lengths.cpu())
            outputs, _ = self.rnn(packed)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=letters.shape[1])
        return outputs.float()  # float: under bfloat16 autocast (charclf.predict.precision) sums stay exact

    def letter_rows(self, letters: torch.Tensor) -> torch.Tensor:
        """(...) letter positions -> (..., E) what the recurrent layer reads: embedded, or one-hot."""
        if self.config.embedding_dim:
            return self.embed(letters)
        return nn.functional.one_hot(letters, self.config.n_letters).float()

    def packed_rows(self, letters: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """(B, T) padded letter positions and (B,) lengths -> their rows as one PackedSequence. The
        positions are packed before they are embedded, so that the embedding's gradient adds up
        each letter's share in the order training always has (bit for bit the same runs). Traced
        for export, the padded rows are packed instead: the graph's recurrent node then takes each
        name's length (the same numbers forward)."""
        if torch.jit.is_tracing():
            return pack_padded_sequence(self.letter_rows(letters), lengths, batch_first=True, enforce_sorted=False)
        packed = pack_padded_sequence(letters, lengths, batch_first=True, enforce_sorted=False)
        return PackedSequence(self.letter_rows(packed.data), packed.batch_sizes, packed.sorted_indices,
                              packed.unsorted_indices)

    def classify(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What read() returns and the lengths -> (B, n_classes) logits of the head alone (what the
        label loss trains)."""
        return self.head(self.dropout(self._pool(outputs, lengths))).float()

    def with_spelling(self, logits: torch.Tensor, outputs: torch.Tensor, letters: torch.Tensor,
                      lengths: torch.Tensor) -> torch.Tensor:
        """The head's (B, n_classes) logits -> the model's answer: its log-probabilities plus
        spelling_weight x log p(name | label) from the spelling heads (charclf.models.spelling)."""
        return self.answer(logits, self.spelling.log_likelihood(outputs, letters, lengths.to(letters.device)))

    def answer(self, logits: torch.Tensor, spelt: torch.Tensor) -> torch.Tensor:
        """The head's (B, n_classes) logits and (B, n_classes) log p(name | label) -> the answer."""
        return combined(logits, spelt, self.config.spelling_weight)

    def _pool(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) per-letter outputs (zeros after each name's end) and (B,) lengths -> (B, features):
        the name as one vector, as config.pooling says."""
        pooling = self.config.pooling
        features = []
        if pooling in ("last", "last+max"):
            # The last states: the forward direction's after each name's last letter, the backward
            # one's after its first (the top layer's h_n of a packed run, read off the outputs,
            # which the ONNX exporter can trace).
            hidden = self.config.hidden_size
            ends = (lengths.to(outputs.device) - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
            last = outputs.gather(1, ends).squeeze(1)[:, :hidden]  # (B, H)
            features.append(torch.cat([last, outputs[:, 0, hidden:]], dim=1) if self.config.bidirectional else last)
        if pooling == "mean+max":
            features.append(outputs.sum(dim=1) / lengths.to(outputs)[:, None])  # padding adds 0
        if pooling in ("max", "mean+max", "last+max"):
            if padded(outputs, lengths):  # some padding: it must never win the max
                steps = torch.arange(outputs.shape[1], device=outputs.device)
                pad = steps[None, :] >= lengths.to(outputs.device)[:, None]
                outputs = outputs.masked_fill(pad[:, :, None], float("-inf"))
            features.append(outputs.amax(dim=1))  # (B, D); max(dim=1) is 20x slower on the CPU
        return torch.cat(features, dim=1)


def padded(rows: torch.Tensor, lengths: torch.Tensor) -> bool:
    """Whether any of the (B, T, ...) rows has padding after its name's end: some length under T. Always
    so while the model is traced for export: the graph must read batches of any mix of lengths."""
    return torch.jit.is_tracing() or bool((lengths < rows.shape[1]).any())


def count_parameters(model: nn.Module) -> int:
    """Learned numbers (of the n-gram baseline, only the rows of buckets seen in training, which
    are all a checkpoint stores)."""
    if hasattr(model, "count_parameters"):
        return model.count_parameters()
    return sum(p.numel() for p in model.parameters())


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without CUDA is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda asked for, but this machine has no usable CUDA GPU (use --device cpu "
                              "or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu or cuda")
    return device
