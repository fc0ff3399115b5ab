"""The classifier: a recurrent backbone (RNN, LSTM or GRU) over embedded (or one-hot) letters,
pooled over all letters, then a linear head; optionally, per-label spelling heads on the same
per-letter states (charclf.models.spelling). Nothing else is inside it."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from charclf.config import NGRAM, ModelConfig
from charclf.data.tensors import index_batch, pack_batch
from charclf.errors import DeviceError
from charclf.models.spelling import SpellingHeads, combined, letter_codes

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
        return index_batch([name.lower() for name in names] if self.config.lowercase else names, alphabet)

    def pack(self, padded: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """(B, T) letter positions and (B,) lengths (index()) -> what forward() reads."""
        return pack_batch(padded, lengths, None if self.config.embedding_dim else self.config.n_letters)

    def forward(self, names: PackedSequence) -> torch.Tensor:
        """Packed names (letter positions with an embedding, else one-hot rows) -> (B, n_classes) logits."""
        outputs, lengths, h = self.read(names)
        logits = self.classify(outputs, lengths, h)
        if self.spelling is None:
            return logits
        letters, _ = pad_packed_sequence(names, batch_first=True)  # (B, T) positions, or (B, T, n_letters) one-hot
        return self.with_spelling(logits, outputs, letters if letters.dim() == 2 else letters.argmax(2), lengths)

    def read(self, names: PackedSequence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Packed names -> ((B, T, directions * H) per-letter outputs, zero after each name's end and
        in input order; (B,) lengths; the final states h_n)."""
        if self.config.embedding_dim:
            names = PackedSequence(self.embed(names.data), names.batch_sizes, names.sorted_indices,
                                   names.unsorted_indices)
        outputs, h = self.rnn(names)
        padded, lengths = pad_packed_sequence(outputs, batch_first=True)
        return padded.float(), lengths, h  # float: under bfloat16 autocast (charclf.predict.precision) sums stay exact

    def classify(self, outputs: torch.Tensor, lengths: torch.Tensor, h) -> torch.Tensor:
        """What read() returns -> (B, n_classes) logits of the head alone (what the label loss trains)."""
        return self.head(self.dropout(self._pool(outputs, lengths, h))).float()

    def with_spelling(self, logits: torch.Tensor, outputs: torch.Tensor, letters: torch.Tensor,
                      lengths: torch.Tensor) -> torch.Tensor:
        """The head's (B, n_classes) logits -> the model's answer: its log-probabilities plus
        spelling_weight x log p(name | label) from the spelling heads (charclf.models.spelling)."""
        return self.answer(logits, self.spelling.log_likelihood(outputs, letters, lengths.to(letters.device)))

    def answer(self, logits: torch.Tensor, spelt: torch.Tensor) -> torch.Tensor:
        """The head's (B, n_classes) logits and (B, n_classes) log p(name | label) -> the answer."""
        return combined(logits, spelt, self.config.spelling_weight)

    def same_length(self, letters: torch.Tensor) -> torch.Tensor:
        """(B, L) letter positions of B names that all have L letters -> (B, n_classes) logits.

        The same numbers as forward(), faster: with no padding there is nothing to pack or to mask."""
        rows = self.embed(letters) if self.config.embedding_dim else \
            nn.functional.one_hot(letters, self.config.n_letters).float()  # (B, L, E)
        outputs, h = self.rnn(rows)  # outputs: (B, L, directions * H)
        outputs = outputs.float()  # as in read()
        lengths = torch.full((len(letters),), letters.shape[1], dtype=torch.long, device=letters.device)
        logits = self.classify(outputs, lengths, h)
        return logits if self.spelling is None else self.with_spelling(logits, outputs, letters, lengths)

    def _pool(self, outputs: torch.Tensor, lengths: torch.Tensor, h) -> torch.Tensor:
        """(B, T, D) per-letter outputs (zeros after each name's end), (B,) lengths and the final
        states -> (B, features): the name as one vector, as config.pooling says."""
        pooling = self.config.pooling
        features = []
        if pooling in ("last", "last+max"):
            h = h[0] if isinstance(h, tuple) else h  # LSTM returns (h, c)
            # h: (num_layers * directions, B, H). With packed input the forward state is each
            # name's last real letter and the backward state its first: the top layer's pair.
            directions = 2 if self.config.bidirectional else 1
            features.append(torch.cat(list(h[-directions:]), dim=1))  # (B, directions * H)
        if pooling == "mean+max":
            features.append(outputs.sum(dim=1) / lengths.to(outputs)[:, None])  # padding adds 0
        if pooling in ("max", "mean+max", "last+max"):
            if outputs.shape[1] > int(lengths.min()):  # some padding: it must never win the max
                steps = torch.arange(outputs.shape[1], device=outputs.device)
                pad = steps[None, :] >= lengths.to(outputs.device)[:, None]
                outputs = outputs.masked_fill(pad[:, :, None], float("-inf"))
            features.append(outputs.amax(dim=1))  # (B, D); max(dim=1) is 20x slower on the CPU
        return torch.cat(features, dim=1)


GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per recurrent layer (torch's layout)


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of the model `config` describes, computed without building it (a
    checkpoint's shapes are checked against these before its weights are read; a test keeps them
    equal to build_model's). For the n-gram baseline, the largest its tables can be."""
    if config.arch == NGRAM:  # its tables at their largest (a checkpoint keeps only the rows seen in training)
        return {"table.weight": (config.ngram_buckets, config.n_classes), "table.bias": (config.n_classes,),
                "table.codes": (config.n_letters,), "table.idf": (config.ngram_buckets,),
                "table.rows": (config.ngram_buckets,)}
    if config.members > 1:  # charclf.models.ensemble: members.0.embed.weight, ...
        one = weight_shapes(dataclasses.replace(config, members=1))
        return {f"members.{k}.{name}": shape for k in range(config.members) for name, shape in one.items()}
    shapes: dict[str, tuple[int, ...]] = {}
    if config.embedding_dim:
        shapes["embed.weight"] = (config.n_letters, config.embedding_dim)
    directions = 2 if config.bidirectional else 1
    rows, hidden = GATES[config.arch] * config.hidden_size, config.hidden_size
    for layer in range(config.num_layers):
        inputs = (config.embedding_dim or config.n_letters) if layer == 0 else hidden * directions
        for suffix in ("", "_reverse")[:directions]:
            shapes[f"rnn.weight_ih_l{layer}{suffix}"] = (rows, inputs)
            shapes[f"rnn.weight_hh_l{layer}{suffix}"] = (rows, hidden)
            shapes[f"rnn.bias_ih_l{layer}{suffix}"] = (rows,)
            shapes[f"rnn.bias_hh_l{layer}{suffix}"] = (rows,)
    width = hidden * directions * (1 if config.pooling in ("last", "max") else 2)
    shapes["head.weight"], shapes["head.bias"] = (config.n_classes, width), (config.n_classes,)
    if config.spelling_weight:
        outputs = int(letter_codes(config.n_letters, config.lowercase).max()) + 1
        for name in ("forward_letters", "backward_letters")[:directions]:
            shapes[f"spelling.{name}.project.weight"] = (config.spelling_rank, hidden)
            shapes[f"spelling.{name}.project.bias"] = (config.spelling_rank,)
            shapes[f"spelling.{name}.letters.weight"] = (config.n_classes * outputs, config.spelling_rank)
            shapes[f"spelling.{name}.letters.bias"] = (config.n_classes * outputs,)
    return shapes

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
