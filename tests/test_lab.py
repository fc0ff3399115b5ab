"""`charclf lab memory` and `charclf explain --gates`: the learner's lab, through the real CLI."""

import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from charclf.cli import main
from charclf.lab.cells import replay
from charclf.lab.textbook import TextbookNet

FAST = ["--epochs", "1", "--hidden-size", "8", "--no-progress", "--no-refit"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def accuracies(result: dict) -> dict[tuple[int, str], float]:
    return {(row["distance"], row["arch"]): row["accuracy"] for row in result["runs"]}


def test_the_plain_rnn_forgets_where_the_gated_cells_remember():
    """The lesson on a small fixed-seed run: at 5 letters every backbone answers; at 25 the plain
    RNN is at chance (0.25) and the LSTM and the GRU still answer, and the gradient reaching the
    first letter through the RNN has all but vanished."""
    result = json.loads(ok("lab", "memory", "--distances", "5,25", "--steps", "500", "--json").stdout)
    score = accuracies(result)
    assert result["chance"] == 0.25 and len(result["runs"]) == 6
    assert min(score[5, arch] for arch in ("rnn", "lstm", "gru")) >= 0.95
    assert score[25, "rnn"] < 0.35
    assert score[25, "lstm"] >= 0.95 and score[25, "gru"] >= 0.95
    rows = {(row["distance"], row["arch"]): row for row in result["runs"]}
    assert rows[25, "rnn"]["steps"] == 500 and rows[25, "lstm"]["steps"] < 500  # stopped once it had learnt
    for row in result["runs"]:
        assert len(row["gradient_before"]) == len(row["gradient_after"]) == row["distance"] + 1
    first_over_last = {arch: rows[25, arch]["gradient_before"][0] / rows[25, arch]["gradient_before"][-1]
                       for arch in ("rnn", "lstm", "gru")}
    assert first_over_last["rnn"] < 1e-4 and first_over_last["lstm"] > 0.1 and first_over_last["gru"] > 0.1


def test_without_the_gate_bias_the_gated_cells_fail_too():
    result = json.loads(ok("lab", "memory", "--no-gate-bias", "--distances", "25", "--models", "lstm,gru",
                           "--steps", "500", "--json").stdout)
    assert result["config"]["gate_bias"] == 0
    assert all(row["accuracy"] < 0.35 and row["steps"] == 500 for row in result["runs"])


def test_the_same_seed_gives_the_same_numbers_and_another_seed_others():
    args = ["lab", "memory", "--distances", "3,6", "--models", "gru,rnn", "--steps", "60", "--hidden-size", "8",
            "--json"]
    first, again = (json.loads(ok(*args).stdout) for _ in range(2))
    other = json.loads(ok(*args, "--seed", "7").stdout)

    def numbers(result):
        return [(r["arch"], r["distance"], r["accuracy"], r["steps"], r["gradient_before"], r["gradient_after"])
                for r in result["runs"]]

    assert numbers(first) == numbers(again) != numbers(other)
    assert [r["arch"] for r in first["runs"]] == ["gru", "rnn", "gru", "rnn"]


def test_table_and_plot(tmp_path):
    png = tmp_path / "memory.png"
    result = ok("lab", "memory", "--distances", "3,6", "--steps", "60", "--hidden-size", "8", "--plot", png,
                "--no-show", "-v")
    lines = result.stdout.splitlines()
    assert f"saved the memory plot to {png}" in lines
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["distance"])
    assert lines[header].split() == ["distance", "rnn", "lstm", "gru"]
    assert [line.split()[0] for line in lines[header + 1:header + 3]] == ["3", "6"]
    assert all(0 <= float(cell) <= 1 for line in lines[header + 1:header + 3] for cell in line.split()[1::2])
    assert "Gradient at the first letter / at the last, distance 6" in result.stdout
    assert result.stderr.count("at distance") == 6  # -v: one line per backbone and distance
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize("args, message", [
    (["--distances", "0,5"], "distinct whole numbers, at least 1"),
    (["--distances", "5,x"], "whole numbers separated by commas"),
    (["--models", "lstm,cnn"], "some of gru, lstm, rnn"),
    (["--steps", "0"], "Invalid value for '--steps'"),
    (["--lr", "nan"], "Invalid value for '--lr'"),
])
def test_memory_usage_errors(args, message):
    result = run("lab", "memory", *args)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_lab_help_imports_no_torch():
    code = ("import sys; from charclf.cli import main\n"
            "try: main(['lab', 'memory', '--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "charclf lab memory" in out and out.strip().endswith("[]")


def test_gate_bias_opens_the_keeping_gate():
    """+5 on the LSTM's forget gate (block 2 of i, f, g, o) and the GRU's update gate (block 2 of r, z, n)."""
    for arch, blocks in (("lstm", 4), ("gru", 3)):
        torch.manual_seed(0)
        plain = TextbookNet(arch, 10, 16, 4).rnn.bias_ih_l0
        torch.manual_seed(0)
        opened = TextbookNet(arch, 10, 16, 4, gate_bias=5.0).rnn.bias_ih_l0
        added = (opened - plain).detach().view(blocks, 16)
        assert torch.equal(added[1], torch.full((16,), 5.0)) and not added[[0, *range(2, blocks)]].any()


@pytest.mark.parametrize("module", [
    nn.RNN(5, 6, num_layers=2, bidirectional=True), nn.RNN(5, 6, nonlinearity="relu"),
    nn.LSTM(5, 6, num_layers=2, bidirectional=True), nn.GRU(5, 6, num_layers=3, bidirectional=True), nn.GRU(5, 6),
], ids=["rnn-2-bi", "rnn-relu", "lstm-2-bi", "gru-3-bi", "gru"])
def test_the_replayed_cells_are_torch_s_own(module):
    """Every layer's states, each direction, equal what the module computes (its top layer's outputs
    after every letter, and each layer's final state; for an LSTM its final cell too)."""
    torch.manual_seed(1)
    rows = torch.randn(7, 5)
    traces = replay(module, rows)
    with torch.no_grad():
        outputs, final = module(rows[:, None])  # (T, 1, directions * H)
    directions = 2 if module.bidirectional else 1
    assert len(traces) == module.num_layers and all(len(layer) == directions for layer in traces)
    top = torch.cat([d["hidden"] for d in traces[-1]], dim=1)
    assert torch.allclose(outputs[:, 0], top, atol=1e-6)
    h_n, c_n = final if isinstance(final, tuple) else (final, None)
    k = 0
    for layer in traces:
        for index, direction in enumerate(layer):
            end = -1 if index == 0 else 0  # the backward direction ends at the first letter
            assert torch.allclose(h_n[k, 0], direction["hidden"][end], atol=1e-6)
            if c_n is not None:
                assert torch.allclose(c_n[k, 0], direction["cell"][end], atol=1e-6)
            for gate in ("input", "forget", "output", "reset", "update"):
                if gate in direction:
                    assert direction[gate].min() >= 0 and direction[gate].max() <= 1
            k += 1


GATES = {"rnn": [], "lstm": ["input", "forget", "output"], "gru": ["update", "reset"]}


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", [[], ["--unidirectional", "--num-layers", "2"]], ids=["bidirectional", "2 layers"])
def test_explain_gates_for_every_backbone(arch, shape, tiny_data, tmp_path):
    ckpt = tmp_path / f"{arch}.pt"
    ok("train", "--data", tiny_data, "--arch", arch, *shape, *FAST, "--out", ckpt)
    result = json.loads(ok("explain", "Yamamoto", "--gates", "--json", "--checkpoint", ckpt).stdout)
    assert result["arch"] == arch and result["replay_error"] < 1e-5
    assert result["layer"] == result["layers"] == (2 if shape else 1)
    assert [d["direction"].split()[0] for d in result["directions"]] == \
        (["forward"] if shape else ["forward", "backward"])
    for block in result["directions"]:
        assert [row["letter"] for row in block["rows"]] == list("Yamamoto")  # one row per letter
        for row in block["rows"]:
            assert set(row) == {"position", "letter", *GATES[arch], "hidden_size",
                                *(["cell_size"] if arch == "lstm" else [])}
            assert all(0 <= row[gate] <= 1 for gate in GATES[arch]) and 0 <= row["hidden_size"] <= 1
        assert list(block["movers"]) == (GATES[arch] or ["hidden"])
        for key, units in block["movers"].items():
            assert len(units) == 3 and all(len(unit["values"]) == 8 for unit in units)
            low = -1 if key == "hidden" else 0
            assert all(low <= v <= 1 for unit in units for v in unit["values"])
            assert [unit["spread"] for unit in units] == sorted((unit["spread"] for unit in units), reverse=True)
    table = ok("explain", "Yamamoto", "--gates", "--checkpoint", ckpt).stdout.splitlines()
    letters = [line.split() for line in table if line[:3].strip().isdigit()]
    assert [row[1] for row in letters] == list("Yamamoto") * len(result["directions"])
    assert all(len(row) == 2 + len(GATES[arch]) + 1 + (arch == "lstm") for row in letters)


def test_explain_gates_layer_ensemble_and_plot(tiny_data, tmp_path):
    ckpt = tmp_path / "ens.pt"
    ok("train", "--data", tiny_data, "--arch", "lstm", "--num-layers", "2", "--members", "2", *FAST, "--out", ckpt)
    result = json.loads(ok("explain", "Rossi", "--gates", "--layer", "1", "--json", "--checkpoint", ckpt).stdout)
    assert result["layer"] == 1 and result["layers"] == 2
    assert result["note"] == "an ensemble of 2 networks: the gates of the first are shown"
    png = tmp_path / "gates.png"
    out = ok("explain", "Rossi", "--gates", "--plot", png, "--no-show", "--checkpoint", ckpt).stdout
    assert out.startswith(f"saved the gates plot to {png}") and "note: an ensemble of 2 networks" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_explain_gates_errors(tiny_data, tmp_path):
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", tiny_data, "--arch", "gru", *FAST, "--out", ckpt)
    ngram = tmp_path / "ngram.pt"
    ok("train", "--data", tiny_data, "--model", "ngram", "--no-progress", "--out", ngram)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read: the suffix is enough to refuse")
    for args, message in [
        (["--gates", "--checkpoint", onnx], "--gates needs the .pt model and torch"),
        (["--gates", "--checkpoint", ngram], "the n-gram baseline has no recurrent cell"),
        (["--gates", "--layer", "2", "--checkpoint", ckpt], "--layer 2: this network has 1 layer(s)"),
        (["--layer", "1", "--checkpoint", ckpt], "--layer goes with --gates"),
    ]:
        result = run("explain", "Rossi", *args)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
    result = run("explain", "...", "--gates", "--checkpoint", ckpt)
    assert result.exit_code == 2 and "has no letters to read" in result.stderr
