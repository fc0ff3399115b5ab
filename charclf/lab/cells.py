"""The recurrent cells of nn.RNN, nn.LSTM and nn.GRU re-run one letter at a time from a trained
module's own weights, keeping every gate's value, which torch's fused kernels do not return.

torch's layout: each layer and direction has weight_ih (blocks x H, inputs), weight_hh (blocks x H,
H), bias_ih and bias_hh, the blocks stacked in the order i, f, g, o (LSTM) and r, z, n (GRU). The
layer above reads [forward state, backward state] side by side; the backward direction reads the
sequence from its end. The update equations are in docs/learn.md."""

from __future__ import annotations

import torch
from torch import nn

# Each block of torch's weights, named as the equations name them.
BLOCKS = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "new"), "rnn": ("hidden",)}


def replay(rnn: nn.Module, rows: torch.Tensor) -> list[list[dict[str, torch.Tensor]]]:
    """An nn.RNN/LSTM/GRU and (T, inputs) rows (one sequence) -> per layer, per direction (forward,
    then backward), {quantity: (T, H)} in the sequence's order: every block of BLOCKS after the
    letter at that position is read, "hidden" (h_t), and for an LSTM "cell" (c_t)."""
    arch = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(rnn)]
    layers = []
    for layer in range(rnn.num_layers):
        directions = []
        for suffix, backward in (("", False), ("_reverse", True))[:2 if rnn.bidirectional else 1]:
            weights = [getattr(rnn, f"{kind}_l{layer}{suffix}")
                       for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            sequence = rows.flip(0) if backward else rows
            trace = run_cell(arch, sequence, *weights, relu=getattr(rnn, "nonlinearity", "tanh") == "relu")
            directions.append({k: v.flip(0) if backward else v for k, v in trace.items()})
        layers.append(directions)
        rows = torch.cat([d["hidden"] for d in directions], dim=1)  # (T, directions * H): the next layer's input
    return layers


@torch.no_grad()
def run_cell(arch: str, rows: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
             b_hh: torch.Tensor, relu: bool = False) -> dict[str, torch.Tensor]:
    """One direction of one layer over (T, inputs) rows from a zero state -> {quantity: (T, H)}."""
    hidden = w_hh.shape[1]
    from_input = rows.float() @ w_ih.float().T + b_ih.float()  # (T, blocks * H): the input's share, all steps at once
    h = torch.zeros(hidden)
    c = torch.zeros(hidden)
    kept: dict[str, list[torch.Tensor]] = {}
    for x_part in from_input:
        h_part = h @ w_hh.float().T + b_hh.float()  # (blocks * H): the previous state's share
        if arch == "lstm":
            i, f, g, o = (x_part + h_part).chunk(4)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g  # forget some of the old cell, write some of the candidate
            h = o * torch.tanh(c)  # show some of it
            step = {"input": i, "forget": f, "candidate": g, "output": o, "cell": c}
        elif arch == "gru":
            x_r, x_z, x_n = x_part.chunk(3)
            h_r, h_z, h_n = h_part.chunk(3)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)  # the reset gate decides how much of the old state the new one sees
            h = (1 - z) * n + z * h  # the update gate keeps z of the old state
            step = {"reset": r, "update": z, "new": n}
        else:
            h = torch.relu(x_part + h_part) if relu else torch.tanh(x_part + h_part)
            step = {}
        for key, value in {**step, "hidden": h}.items():
            kept.setdefault(key, []).append(value)
    return {key: torch.stack(values) for key, values in kept.items()}
