"""The classifier: a recurrent backbone (RNN, LSTM or GRU) over embedded (or one-hot) letters, then a linear head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from charclf.config import ModelConfig
from charclf.data import index_batch, pack_batch
from charclf.errors import DeviceError

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

    def pack(self, padded: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
        """(B, T) letter positions and (B,) lengths (data.index_batch) -> what forward() reads."""
        return pack_batch(padded, lengths, None if self.config.embedding_dim else self.config.n_letters)

    def forward(self, names: PackedSequence) -> torch.Tensor:
        """Packed names (letter positions with an embedding, else one-hot rows) -> (B, n_classes) logits."""
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


def count_parameters(model: nn.Module) -> int:
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
            raise DeviceError("--device cuda asked for, but this machine has no usable CUDA GPU (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu or cuda")
    return device


@torch.inference_mode()
def batched_logits(
    model: NameClassifier, names: list[str], alphabet: str, device: torch.device, batch_size: int = 2048
) -> torch.Tensor:
    """N folded names -> (N, n_classes) logits on the CPU, in input order.

    Names are sorted by length first so that each batch pads little.
    """
    model.eval()
    order = sorted(range(len(names)), key=lambda i: len(names[i]))
    out = torch.empty(len(names), model.config.n_classes)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        packed = model.pack(*index_batch([names[i] for i in chunk], alphabet)).to(device)
        out[chunk] = model(packed).float().cpu()
    return out
