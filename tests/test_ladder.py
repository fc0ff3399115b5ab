"""The tutorial's network (`train --preset tutorial`) and the ladder from it to the default model
(`compare --ladder`), the backbones on several seeds and on equal terms (`compare --seeds`,
`--same-budget`): end to end through the CLI on small data, and the parts they are made of."""

import json

import pytest
import torch
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.config import TrainConfig, defaults_for
from charclf.data.batches import by_label
from charclf.files.checkpoint import load_checkpoint
from charclf.training.ladder import RUNGS, ladder, same_budget
from charclf.training.recipes import TUTORIAL, tutorial_configs


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def made_up(tmp_path_factory):
    from conftest import write_made_up_languages

    return write_made_up_languages(tmp_path_factory.mktemp("ladder") / "names", per_label=30, seed=3, longest=8)


def test_the_tutorial_preset_trains_the_tutorials_network_and_every_command_reads_it(made_up, tmp_path):
    pytest.importorskip("onnx")
    out = tmp_path / "tutorial.pt"
    said = ok("train", "--preset", "tutorial", "--data", made_up, "--no-progress", "--out", out)
    assert f"saved rnn model to {out}" in said and "test:" in said
    ck = load_checkpoint(out)
    c = ck.model_config
    assert (c.arch, c.hidden_size, c.num_layers, c.bidirectional, c.embedding_dim, c.lowercase, c.pooling,
            c.spelling_weight, c.members) == ("rnn", 128, 1, False, 0, False, "last", 0.0, 1)
    assert c.n_letters == 57 and ck.metrics["parameters"] == (57 + 128 + 2) * 128 + 128 * 3 + 3  # nn.RNN + head
    t = ck.train_config
    assert (t["optimizer"], t["lr"], t["batch_size"], t["sampling"], t["epochs"], t["clip_grad_norm"],
            t["refit"]) == ("sgd", 0.005, 1, "by-label", 7, 0.0, False)
    assert ck.metrics["recipe"] == {"name": "tutorial"}
    # A normal model file: the light install's .onnx beside it, and every command reads it.
    assert charclf.load(out).backend.name == "onnx"
    names = ["Aeiou", "Bortkaz", "Lemmys", "Haze"]
    light = [json.loads(line) for line in ok("predict", *names, "--json", "--checkpoint", out).splitlines()]
    full = [json.loads(line) for line in
            ok("predict", *names, "--json", "--checkpoint", out, "--backend", "torch").splitlines()]
    assert [row["label"] for row in light] == [row["label"] for row in full]
    explained = json.loads(ok("explain", "Bortkaz", "--json", "--checkpoint", out))
    assert len(explained["letters"]) == len("Bortkaz")
    scores = json.loads(ok("evaluate", "--json", "--checkpoint", out, "--data", made_up))
    assert scores["accuracy"] == pytest.approx(ck.metrics["test"]["accuracy"])
    ok("export", "--checkpoint", out, tmp_path / "again.onnx")
    assert charclf.load(tmp_path / "again.onnx").predict(names)[0].label == light[0]["label"]


def test_the_tutorial_preset_sets_everything_itself(made_up, tmp_path):
    for extra, message in ((["--model", "gru"], "drop --model"), (["--epochs", "2"], "drop --epochs"),
                           (["--resume"], "cannot --resume")):
        result = run("train", "--preset", "tutorial", "--data", made_up, "--out", tmp_path / "m.pt", *extra)
        assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "m.pt").exists()


def test_the_ladder_climbs_from_the_tutorial_to_the_default_one_change_at_a_time():
    entries = ladder()
    assert [e.name for e in entries] == ["tutorial"] + [name for name, _, _ in RUNGS]
    assert entries[0].configs(4) == tutorial_configs(4)
    assert entries[-1].configs(4) == defaults_for("gru", seed=4)  # the top rung is the default model
    for before, after, (_, changed, _) in zip(entries, entries[1:], RUNGS):
        differ = {k for k in after.options if after.options[k] != before.options.get(k)}
        differ |= {"arch"} if after.arch != before.arch else set()
        assert differ and differ <= set(changed)  # only what the rung says (some may already agree)
    assert entries[3].arch == "gru" and all(e.arch == "rnn" for e in entries[:3])


def test_compare_ladder_runs_every_rung_through_the_cli(tiny_data, tmp_path):
    out = ok("compare", "--ladder", "--seeds", "0", "--epochs", "1", "--data", tiny_data, "--no-progress",
             "--out-dir", tmp_path / "ladder").splitlines()
    assert "test accuracy" in out[0] and "split seeds 0" in out[0]
    rows = json.loads((tmp_path / "ladder" / "compare.json").read_text())
    assert [row["name"] for row in rows] == [line.split()[0] for line in out[1:-1]] == [e.name for e in ladder()]
    for row, line in zip(rows, out[1:-1]):
        assert line.split()[1:4] == [f"{row['test_accuracy']['mean']:.4f}", "±", "-"]  # one seed: no spread
        (checkpoint,) = row["checkpoints"]
        ck = load_checkpoint(checkpoint)
        assert ck.model_config.arch == row["arch"] and ck.train_config["epochs"] == 1
        assert ck.metrics["parameters"] == row["parameters"]
    assert load_checkpoint(rows[0]["checkpoints"][0]).train_config["optimizer"] == "sgd"
    assert (tmp_path / "ladder" / "compare.png").stat().st_size > 10_000


def test_compare_on_several_seeds_gives_the_backbones_the_same_budget(tiny_data, tmp_path):
    out = ok("compare", "--same-budget", "--archs", "rnn,gru", "--seeds", "0,1", "--epochs", "1", "--data", tiny_data,
             "--no-progress", "--out-dir", tmp_path / "cmp").splitlines()
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [row["name"] for row in rows] == ["rnn", "gru"] and all(row["seeds"] == [0, 1] for row in rows)
    budget = rows[1]["parameters"]
    assert budget * 0.98 < rows[0]["parameters"] <= budget  # the rnn gets more units for the same weights
    configs = [load_checkpoint(path).train_config for row in rows for path in row["checkpoints"]]
    assert {(c["lr"], c["clip_grad_norm"]) for c in configs} == {(TrainConfig.lr, TrainConfig.clip_grad_norm)}
    assert [c["seed"] for c in configs] == [0, 1, 0, 1]
    accuracies = rows[0]["test_accuracy"]
    assert accuracies["mean"] == pytest.approx(sum(accuracies["seeds"]) / 2)
    assert out[1].split()[1:4] == [f"{accuracies['mean']:.4f}", "±", f"{accuracies['sd']:.4f}"]
    assert (tmp_path / "cmp" / "compare.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--ladder", "--archs", "gru"], "drop --archs"), (["--seeds", "0,0"], "distinct"), (["--seeds", "a"], "distinct"),
    (["--same-budget", "--archs", "gru,ngram"], "choose distinct ones from gru, lstm, rnn")])
def test_bad_comparisons_are_usage_errors(tiny_data, tmp_path, args, message):
    result = run("compare", "--data", tiny_data, "--out-dir", tmp_path / "cmp", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "cmp").exists()


def test_same_budget_fits_each_backbone_to_the_default_grus_weights():
    rnn, lstm, gru = same_budget(["rnn", "lstm", "gru"], n_letters=57, n_classes=18)
    assert gru.options["hidden_size"] == 128 and rnn.options["hidden_size"] > 128 > lstm.options["hidden_size"]


def test_label_first_draws_give_every_label_the_same_share():
    targets = [0] * 900 + [1] * 90 + [2] * 10  # 90%, 9% and 1% of the names
    draws = by_label(targets, torch.Generator().manual_seed(0))
    assert len(draws) == len(targets) and draws == by_label(targets, torch.Generator().manual_seed(0))
    shares = torch.bincount(torch.tensor([targets[i] for i in draws]), minlength=3) / len(draws)
    assert all(abs(share - 1 / 3) < 0.05 for share in shares.tolist())
    assert len({i for i in draws if targets[i] == 2}) == 10  # the rare label's names all drawn, many times


def test_the_tutorials_settings_are_all_training_or_model_options():
    model_options, config = tutorial_configs(0)
    for name, value in TUTORIAL.items():
        assert model_options.get(name, getattr(config, name, None)) == value
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="clip_grad_norm"):
        TrainConfig(clip_grad_norm=-1.0)


def test_label_first_draws_need_a_folder_not_a_streamed_file(tmp_path):
    from conftest import TINY

    rows = [f"{name},{label}" for label, names in TINY.items() for name in names]
    data = tmp_path / "names.csv"
    data.write_text("name,label\n" + "\n".join(rows * 4) + "\n")
    result = run("train", "--preset", "tutorial", "--data", data, "--no-progress", "--out", tmp_path / "m.pt")
    assert result.exit_code == 1 and "sampling 'by-label' needs a folder of <Label>.txt files" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.pt").exists()
