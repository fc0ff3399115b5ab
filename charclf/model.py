"""The classifier: a recurrent backbone (RNN, LSTM or GRU) over embedded (or one-hot) letters, then a linear head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from charclf.config import ModelConfig
from charclf.data import index_batch, pack_batch
from charclf.errors import DeviceError
from charclf.ngrams import NgramTable

# One table drives the model and the CLI's --arch choices (config.ARCHS, kept equal by a test).
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
        width = config.hidden_size * directions * (2 if config.pooling == "last+max" else 1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, config.n_classes)
        self.ngrams = None
        if config.ngram_buckets:
            # The linear n-gram part (fitted before the recurrent part, then frozen) and the weight
            # of its log-probabilities in the output, chosen on validation (training.py).
            self.ngrams = NgramTable(config.n_letters, config.n_classes, config.ngram_buckets, config.ngram_max_n)
            self.ngrams.requires_grad_(False)
            self.register_buffer("mix", torch.tensor(0.5))
            # Added to the mixed log-probabilities: -tau * log(training label shares) with tau chosen
            # on validation, which trades a little accuracy for better recall of rare labels.
            self.register_buffer("adjust", torch.zeros(config.n_classes))

    def pack(self, padded: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """(B, T) letter positions and (B,) lengths (data.index_batch) -> what forward() reads."""
        return pack_batch(padded, lengths, None if self.config.embedding_dim else self.config.n_letters)

    def forward(self, names: PackedSequence, recurrent_only: bool = False) -> torch.Tensor:
        """Packed names (letter positions with an embedding, else one-hot rows) -> (B, n_classes) logits.
        recurrent_only: the recurrent part's logits alone (what training fits; DDP calls forward)."""
        logits = self.recurrent(names)
        if self.ngrams is None or recurrent_only:
            return logits
        letters = names if self.config.embedding_dim else PackedSequence(
            names.data.argmax(1), names.batch_sizes, names.sorted_indices, names.unsorted_indices)
        padded, lengths = pad_packed_sequence(letters, batch_first=True)  # (B, T), (B,) in input order
        return self.combine(logits, self.ngrams(padded, lengths))

    def recurrent(self, names: PackedSequence) -> torch.Tensor:
        """The recurrent part alone: packed names -> (B, n_classes) logits (what training fits)."""
        if self.config.embedding_dim:
            names = PackedSequence(self.embed(names.data), names.batch_sizes, names.sorted_indices,
                                   names.unsorted_indices)
        outputs, h = self.rnn(names)
        if isinstance(h, tuple):  # LSTM returns (h, c)
            h = h[0]
        features = []
        if self.config.pooling in ("last", "last+max"):
            # h: (num_layers * directions, B, H). With packed input the forward state is each
            # name's last real letter and the backward state its first: the top layer's pair.
            directions = 2 if self.config.bidirectional else 1
            features.append(torch.cat(list(h[-directions:]), dim=1))  # (B, directions * H)
        if self.config.pooling in ("max", "last+max"):
            padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
            features.append(padded.max(dim=1).values)  # (B, directions * H), padding never wins
        return self.head(self.dropout(torch.cat(features, dim=1)))

    def same_length(self, letters: torch.Tensor) -> torch.Tensor:
        """(B, L) letter positions of B names that all have L letters -> (B, n_classes) logits.

        The same numbers as forward(), faster: with no padding there is nothing to pack or to
        mask, the last states are h_n and max pooling is a plain max over the L steps."""
        rows = self.embed(letters) if self.config.embedding_dim else \
            nn.functional.one_hot(letters, self.config.n_letters).float()  # (B, L, E)
        outputs, h = self.rnn(rows)  # outputs: (B, L, directions * H)
        if isinstance(h, tuple):
            h = h[0]
        features = []
        if self.config.pooling in ("last", "last+max"):
            directions = 2 if self.config.bidirectional else 1
            features.append(torch.cat(list(h[-directions:]), dim=1))
        if self.config.pooling in ("max", "last+max"):
            features.append(outputs.max(dim=1).values)
        logits = self.head(self.dropout(torch.cat(features, dim=1)))
        if self.ngrams is None:
            return logits
        return self.combine(logits, self.ngrams.same_length(letters))

    def combine(self, recurrent: torch.Tensor, ngrams: torch.Tensor) -> torch.Tensor:
        """Both parts' log-probabilities, weighted (mix * n-grams + (1 - mix) * recurrent), + adjust."""
        mix = self.mix.to(recurrent.dtype)
        mixed = (1 - mix) * torch.log_softmax(recurrent, dim=1) + mix * torch.log_softmax(ngrams, dim=1)
        return mixed + self.adjust.to(recurrent.dtype)


def count_parameters(model: nn.Module) -> int:
    """Learned numbers; of the n-gram table only the rows of buckets seen in training count (the
    others stay 0 and are not even stored)."""
    total = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("ngrams."))
    if getattr(model, "ngrams", None) is not None:
        seen = int((model.ngrams.idf > 0).sum())
        total += seen * model.ngrams.weight.shape[1] + model.ngrams.bias.numel()
    return total


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
            raise DeviceError("--device cuda asked for, but this machine has no usable CUDA GPU (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu or cuda")
    return device


@torch.inference_mode()
def batched_logits(
    model: NameClassifier, names: list[str], alphabet: str, device: torch.device, batch_size: int = 4096
) -> torch.Tensor:
    """N folded, non-empty names -> (N, n_classes) logits on the CPU, in input order.

    Names are grouped by exact length and each group runs through NameClassifier.same_length in
    batches: no packing and no padding (the same logits as the packed forward)."""
    model.eval()
    out = torch.empty(len(names), model.config.n_classes)
    if not names:
        return out
    padded, lengths = index_batch(names, alphabet)  # (N, T), (N,)
    lengths, order = lengths.sort(stable=True)
    # Where each length's run starts and ends in `order`.
    values, counts = torch.unique_consecutive(lengths, return_counts=True)
    ends = counts.cumsum(0).tolist()
    for length, end, count in zip(values.tolist(), ends, counts.tolist()):
        group = order[end - count : end]
        for start in range(0, count, batch_size):
            chunk = group[start : start + batch_size]
            out[chunk] = model.same_length(padded[chunk, :length].to(device)).float().cpu()
    return out
