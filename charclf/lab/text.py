"""The lab's text tables: accuracy by distance (`charclf lab memory`) and the gates after each
letter (`charclf explain NAME --gates`)."""

from __future__ import annotations


def format_memory(result: dict) -> str:
    """Accuracy by distance, one column per backbone (the training steps it took in brackets), then
    how much of the gradient reaches the deciding first letter at the longest distance."""
    config = result["config"]
    archs = config["archs"]
    rows = {(row["distance"], row["arch"]): row for row in result["runs"]}
    lines = [f"Test accuracy on {config['test_size']} sequences (chance {result['chance']:.2f}); "
             f"in brackets, the training steps taken (at most {config['steps']})",
             f"{'distance':>8}  " + "  ".join(f"{arch:<12}" for arch in archs)]
    for distance in config["distances"]:
        cells = [f"{rows[distance, arch]['accuracy']:.3f} ({rows[distance, arch]['steps']})" for arch in archs]
        lines.append(f"{distance:>8}  " + "  ".join(f"{cell:<12}" for cell in cells))
    longest = max(config["distances"])
    lines += ["", f"Gradient at the first letter / at the last, distance {longest} "
                  "(||d loss / d x_t|| averaged over sequences)",
              f"{'':>8}  " + "  ".join(f"{arch:<12}" for arch in archs)]
    for moment, key in (("at start", "gradient_before"), ("trained", "gradient_after")):
        cells = [f"{first_over_last(rows[longest, arch][key]):<12.1e}" for arch in archs]
        lines.append(f"{moment:>8}  " + "  ".join(cells))
    lines += ["", f"gate bias {config['gate_bias']:+g}, hidden {config['hidden_size']}, "
                  f"{result['seconds']:.0f} s in all"]
    return "\n".join(line.rstrip() for line in lines)


def first_over_last(gradient: list[float]) -> float:
    """How much of the gradient the last letter gets reaches the first (0 when none arrives)."""
    return gradient[0] / gradient[-1] if gradient[-1] else 0.0


def format_gates(result: dict) -> str:
    """`charclf explain NAME --gates`: for each direction a row per letter (the gates and the
    states' sizes, averaged over the units), then the units that move most, their value after
    each letter."""
    arch = result["arch"]
    head = (f"{result['name']}: inside the {arch.upper() if arch != 'rnn' else 'plain RNN'}, layer {result['layer']} "
            f"of {result['layers']}, {result['hidden_size']} units (means over the units)")
    if result["as_read"] != result["name"]:
        head += f"  (read as {result['as_read']})"
    lines = [head] + [f"note: {text}" for text in [*result["caveats"], result["note"]] if text]
    for block in result["directions"]:
        columns = [key for key in block["rows"][0] if key not in ("position", "letter")]
        lines += ["", block["direction"],
                  f"{'#':>3}  letter  " + "  ".join(f"{_title(key):>8}" for key in columns)]
        for row in block["rows"]:
            lines.append(f"{row['position']:>3}  {row['letter']:<6}  "
                         + "  ".join(f"{row[key]:>8.3f}" for key in columns))
        lines.append("units that move most (value after each letter):")
        for key, units in block["movers"].items():
            for unit in units:
                lines.append(f"  {key + ' #' + str(unit['unit']):<13} " + " ".join(f"{v:5.2f}" for v in unit["values"]))
    lines += ["", "replayed from the weights; largest difference from torch's own output: "
              f"{result['replay_error']:.1e}"]
    return "\n".join(lines)


def _title(key: str) -> str:
    return {"hidden_size": "|h|", "cell_size": "|c|"}.get(key, key)
