"""`charclf explain NAME --gates`: what happens inside a trained network as it reads a name. After
each letter, the gates that matter to the lesson (an LSTM's input, forget and output gates and its
cell state's size; a GRU's update and reset gates; every backbone's hidden state's size), averaged
over the units, and the few units that move most; for each direction of a bidirectional network.

The values come from re-running the network's cells from its weights (charclf.lab.cells); each
result says how far that replay is from the module's own output (a few 1e-7)."""

from __future__ import annotations

import torch
from torch import nn

from charclf.errors import CharclfError
from charclf.lab.cells import replay
from charclf.names.reader import EMPTY, UNREADABLE, read

# What is shown after each letter: the gates, then the states' sizes (the mean of |value|).
SHOWN = {"lstm": ("input", "forget", "output"), "gru": ("update", "reset"), "rnn": ()}
MOVERS = 3  # units shown per gate (for a plain RNN: of its hidden state), those whose value varies most
MAX_LETTERS = 256


class NoGates(CharclfError):
    """The model has no recurrent cell to look into, or the name or layer cannot be shown."""

    exit_code = 2


def network(model: nn.Module) -> tuple[nn.Module, str | None]:
    """A NameClassifier, or the first member of an ensemble -> (the network, a note on what is shown)."""
    members = getattr(model, "members", None)
    if members is not None:
        return members[0], f"an ensemble of {len(members)} networks: the gates of the first are shown"
    if not hasattr(model, "rnn"):
        raise NoGates("the n-gram baseline has no recurrent cell: --gates needs an rnn, lstm or gru model")
    return model, None


@torch.no_grad()
def gate_trace(model: nn.Module, alphabet: str, name: str, layer: int | None = None) -> dict:
    """What `model` (a NameClassifier or an Ensemble, as built from a checkpoint) does inside as it
    reads `name` -> plain types, ready for JSON: name, as_read, arch, layer (1-based) and layers,
    hidden_size, note, replay_error, and directions: for each, its rows (one per letter: the
    shown gates' and states' means) and movers (per gate, its units that vary most, with their
    value after every letter)."""
    net, note = network(model)
    config = net.config
    reading = read(name, alphabet)  # as predict and explain read it
    as_read, caveats = reading.as_read, list(reading.caveats)
    if reading.problem in (UNREADABLE, EMPTY):
        raise NoGates(f"{name!r} has no letters to read")
    if reading.problem is not None:
        raise NoGates(f"too long to show: {reading.problem}")
    if len(as_read) > MAX_LETTERS:
        raise NoGates(f"too long to show: {len(as_read)} letters as read, at most {MAX_LETTERS}")
    layer = config.num_layers if layer is None else layer
    if not 1 <= layer <= config.num_layers:
        raise NoGates(f"--layer {layer}: this network has {config.num_layers} layer(s)")
    positions, _ = net.index([as_read], alphabet)  # (1, T)
    rows = net.letter_rows(positions[0])  # (T, inputs)
    traces = replay(net.rnn, rows)
    names = ("forward (reads left to right)", "backward (reads right to left)")
    return {"name": name, "as_read": as_read, "caveats": caveats, "arch": config.arch, "layer": layer,
            "layers": config.num_layers, "hidden_size": config.hidden_size, "note": note,
            "replay_error": replay_error(net.rnn, rows, traces),
            "directions": [direction(config.arch, direction_name, trace, as_read)
                           for direction_name, trace in zip(names, traces[layer - 1])]}


def direction(arch: str, name: str, trace: dict[str, torch.Tensor], letters: str) -> dict:
    """One direction's {quantity: (T, H)} -> its table: a row per letter, and the units that move most."""
    sizes = ("hidden", "cell") if arch == "lstm" else ("hidden",)
    rows = []
    for t, letter in enumerate(letters):
        row = {"position": t + 1, "letter": letter}
        row.update({gate: round(float(trace[gate][t].mean()), 6) for gate in SHOWN[arch]})
        row.update({f"{state}_size": round(float(trace[state][t].abs().mean()), 6) for state in sizes})
        rows.append(row)
    moved = SHOWN[arch] or ("hidden",)
    return {"direction": name, "rows": rows, "movers": {key: movers(trace[key]) for key in moved}}


def movers(values: torch.Tensor, count: int = MOVERS) -> list[dict]:
    """(T, H) values of one quantity -> the `count` units whose value varies most across the
    letters (max - min), each with its value after every letter."""
    spread = values.amax(dim=0) - values.amin(dim=0)  # (H,)
    top = spread.topk(min(count, len(spread))).indices.tolist()
    return [{"unit": unit, "spread": round(float(spread[unit]), 6),
             "values": [round(v, 6) for v in values[:, unit].tolist()]} for unit in top]


def replay_error(rnn: nn.Module, rows: torch.Tensor, traces: list[list[dict[str, torch.Tensor]]]) -> float:
    """The largest difference between the replayed states and the module's own: its top layer's
    output after every letter and every layer's final state (a check that the replay is the network)."""
    outputs, final = rnn(rows[None])  # (1, T, directions * H); final: (layers * directions, 1, H), or (h, c)
    final_h = final[0] if isinstance(final, tuple) else final
    top = torch.cat([d["hidden"] for d in traces[-1]], dim=1)
    # The forward direction ends at the last letter, the backward one at the first.
    ends = torch.stack([d["hidden"][-1 if k == 0 else 0] for layer in traces for k, d in enumerate(layer)])
    return float(max((outputs[0] - top).abs().max(), (final_h[:, 0] - ends).abs().max()))
