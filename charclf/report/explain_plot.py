"""The letter-by-letter figure of `charclf explain --plot`: each followed label's probability
after every letter, the letters on the x axis (as read, and as typed beneath where they differ)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from charclf.report.plots import _save


def explanation_figure(result: dict) -> Figure:
    """One line per tracked label (the final answer thickest), the letters that moved the final
    answer most shaded, probabilities 0-1 on the y axis."""
    letters = result["letters"]
    positions = [row["position"] for row in letters]
    fig = Figure(figsize=(max(6.0, 0.55 * len(letters) + 3.5), 4.2))
    ax = fig.subplots()
    for point in result["turning_points"]:
        ax.axvspan(point["position"] - 0.5, point["position"] + 0.5, color="gold", alpha=0.25, linewidth=0)
    for rank, label in enumerate(result["tracked"]):
        values = [row["probabilities"][label] for row in letters]
        ax.plot(positions, values, marker="o", markersize=4 if rank else 6, linewidth=2.8 if rank == 0 else 1.4,
                label=label, zorder=3 if rank == 0 else 2)
    typed_differs = any(row["typed"] != row["letter"] for row in letters)
    ticks = [f"{row['letter']}\n{row['typed']}" if typed_differs else row["letter"] for row in letters]
    ax.set_xticks(positions, ticks, fontsize=11)
    ax.set_xlim(0.5, len(letters) + 0.5)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("probability after the letter")
    ax.set_xlabel("letter read" + (" (typed beneath)" if typed_differs else ""))
    ax.grid(axis="y", alpha=0.3)
    read = f" (read as {result['as_read']})" if result["as_read"] != result["name"] else ""
    final = letters[-1]["probabilities"][result["label"]]
    ax.set_title(f"{result['name']}{read}: {result['label']} {final:.2f}, letter by letter"
                 + ("\nshaded: the letters that moved it most" if result["turning_points"] else ""), fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def save_explanation(result: dict, path: Path) -> None:
    _save(explanation_figure(result), path)
