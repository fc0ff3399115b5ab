"""The lab's figures: accuracy by distance with the gradient at each time step (`charclf lab
memory --plot`), and the gates after each letter as a heat map (`charclf explain NAME --gates --plot`)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from charclf.report.plots import _save

COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


def memory_figure(result: dict) -> Figure:
    """Left: test accuracy against the distance, one line per backbone, chance dashed. Middle and
    right: at the longest distance, ||d loss / d x_t|| at each time step on a log scale, at the
    start and after training (the first letter, which decides the label, at the left)."""
    config = result["config"]
    longest = max(config["distances"])
    fig = Figure(figsize=(15, 4.3))
    score_ax, start_ax, trained_ax = fig.subplots(1, 3)
    for arch in config["archs"]:
        rows = sorted((r for r in result["runs"] if r["arch"] == arch), key=lambda r: r["distance"])
        score_ax.plot([r["distance"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                      color=COLOURS.get(arch), label=arch)
        last = next(r for r in rows if r["distance"] == longest)
        for ax, key in ((start_ax, "gradient_before"), (trained_ax, "gradient_after")):
            values = [v if v > 0 else float("nan") for v in last[key]]  # an exact 0 cannot be drawn on a log scale
            ax.plot(range(len(values)), values, color=COLOURS.get(arch), label=arch)
    score_ax.axhline(result["chance"], linestyle="--", color="grey", label="chance")
    score_ax.set(xscale="log", xlabel="distance (distractor letters after the deciding one)",
                 ylabel="test accuracy", ylim=(0, 1.03), title="Remembering the first letter")
    score_ax.set_xticks(config["distances"], [str(d) for d in config["distances"]])
    score_ax.minorticks_off()
    for ax, when in ((start_ax, "at the start"), (trained_ax, "after training")):
        ax.set(yscale="log", xlabel="time step t (0: the deciding letter)", ylabel="||d loss / d x_t||",
               title=f"Gradient reaching each letter, {when}\n(distance {longest})")
    for ax in (score_ax, start_ax, trained_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def save_memory(result: dict, path: Path) -> None:
    _save(memory_figure(result), path)


def gates_figure(result: dict) -> Figure:
    """For each direction: a heat map of the gates after each letter (the means over the units, then
    the units that move most), the letters along the x axis; beneath it, the states' sizes."""
    blocks = result["directions"]
    letters = list(result["as_read"])
    heat_rows = max(len(_heat(block, result["arch"])[0]) for block in blocks)
    fig = Figure(figsize=(max(6.0, 0.5 * len(letters) + 3.5), len(blocks) * (0.32 * heat_rows + 2.6)))
    axes = fig.subplots(2 * len(blocks), 1, gridspec_kw={"height_ratios": [max(heat_rows, 2), 2.2] * len(blocks)},
                        squeeze=False)[:, 0]
    for k, block in enumerate(blocks):
        heat_ax, size_ax = axes[2 * k], axes[2 * k + 1]
        labels, values, scale = _heat(block, result["arch"])
        image = heat_ax.imshow(values, aspect="auto", vmin=scale[0], vmax=scale[1],
                               cmap="viridis" if scale[0] == 0 else "RdBu_r")
        heat_ax.set_yticks(range(len(labels)), labels, fontsize=8)
        heat_ax.set_xticks(range(len(letters)), letters)
        heat_ax.set_title(f"{result['name']}: {result['arch']} layer {result['layer']}, {block['direction']}",
                          fontsize=10)
        fig.colorbar(image, ax=heat_ax, fraction=0.03, pad=0.01)
        fig.colorbar(image, ax=size_ax, fraction=0.03, pad=0.01).ax.set_visible(False)  # the same width: letters align
        for key in (key for key in block["rows"][0] if key.endswith("_size")):
            size_ax.plot(range(len(letters)), [row[key] for row in block["rows"]], marker="o",
                         label={"hidden_size": "mean |h|", "cell_size": "mean |c|"}[key])
        size_ax.set_xticks(range(len(letters)), letters)
        size_ax.set_xlim(-0.5, len(letters) - 0.5)
        size_ax.set_ylim(0, 1.6 * max(row[key] for row in block["rows"] for key in row if key.endswith("_size")))
        size_ax.set_ylabel("state size", fontsize=9)
        size_ax.grid(alpha=0.3)
        size_ax.legend(fontsize=8, loc="upper left", ncol=2, frameon=False)  # in the headroom above the lines
    fig.tight_layout()
    return fig


def _heat(block: dict, arch: str) -> tuple[list[str], list[list[float]], tuple[float, float]]:
    """One direction -> (row labels, rows of values by letter, colour range): the gates' means and
    their moving units in [0, 1]; for a plain RNN, which has no gates, its moving units' h in [-1, 1]."""
    labels, values = [], []
    gates = [key for key in block["movers"] if key != "hidden"]
    for gate in gates:
        labels.append(f"{gate} (mean)")
        values.append([row[gate] for row in block["rows"]])
    for key, units in block["movers"].items():
        for unit in units:
            labels.append(f"{key} #{unit['unit']}")
            values.append(unit["values"])
    return labels, values, (0.0, 1.0) if gates else (-1.0, 1.0)


def save_gates(result: dict, path: Path) -> None:
    _save(gates_figure(result), path)
