"""The textbook network: one recurrent layer in one direction over one-hot letters, and the answer
read from its last state by a linear layer. The same for the three backbones but for the cell."""

from __future__ import annotations

import torch
from torch import nn

from charclf.models.model import BACKBONES

# Where the gate that keeps memory sits among the 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n) blocks of
# torch's bias vectors: the LSTM's forget gate f, and the GRU's update gate z (torch's GRU keeps
# z of the old state: h' = (1 - z) * n + z * h). Both are the second block.
KEEPING_GATE = {"lstm": 1, "gru": 1}


class TextbookNet(nn.Module):
    def __init__(self, arch: str, letters: int, hidden_size: int, labels: int, gate_bias: float = 0.0):
        super().__init__()
        self.arch = arch
        self.rnn = BACKBONES[arch](input_size=letters, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, labels)
        if gate_bias and arch in KEEPING_GATE:
            open_keeping_gate(self.rnn, KEEPING_GATE[arch], gate_bias)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, T, letters) one-hot rows -> (B, labels) logits from the state after the last letter."""
        outputs, _ = self.rnn(sequences)  # (B, T, H): the state after each letter
        return self.head(outputs[:, -1])


@torch.no_grad()
def open_keeping_gate(rnn: nn.Module, block: int, amount: float) -> None:
    """Add `amount` to one gate's input bias: sigmoid(2) = 0.88 of the state is kept at each letter
    from the start instead of about 0.5, so a signal survives 0.88 ** 20 = 0.08 of itself after 20
    letters rather than 0.5 ** 20 = 1e-6, and training can find it."""
    hidden = rnn.hidden_size
    rnn.bias_ih_l0[block * hidden:(block + 1) * hidden] += amount
