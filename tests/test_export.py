"""`charclf export` (ONNX, TorchScript) and predictions from a .onnx file without torch."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.config import ModelConfig
from charclf.data.dataset import load_dataset, split_dataset
from charclf.data.tensors import index_batch
from charclf.extras import install_command
from charclf.files.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from charclf.files.export import exported
from charclf.files.locations import shipped_checkpoint
from charclf.models.build import build_model
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.classifier import Classifier
from charclf.predict.loading import load as load_model

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# Short, long, one letter, spaces and punctuation, other scripts, an unreadable one.
NAMES = ["Jones", "Yamamoto", "Li", "O", "O'Neil", "de la Cruz", "Wolfeschlegelsteinhausenbergerdorff",
         "Иванов", "山田", "Müller", "...", "JONES", "jones"]


def ok(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    # By path: a module fixture runs before each test's own CHARCLF_HOME (conftest.isolated_home).
    text = CliRunner().invoke(main, ["export", str(out), "--checkpoint", str(shipped_checkpoint())]).stdout
    assert f"to {out} (onnx," in text
    return out


def test_onnx_gives_the_torch_probabilities_of_the_shipped_model(shipped_onnx):
    clf, light = load_model(shipped_checkpoint(), backend="torch"), load_model(shipped_onnx)
    assert (clf.backend.name, light.backend.name) == ("torch", "onnx")
    assert (light.labels, light.alphabet, light.temperature) == (clf.labels, clf.alphabet, clf.temperature)
    readable = [p.as_read for p in clf.predict(NAMES) if p.top]
    expected, got = clf.probabilities(readable), light.probabilities(readable)
    assert abs(expected - got).max() < 1e-4
    assert (expected.argmax(1) == got.argmax(1)).all()
    for a, b in zip(clf.predict(NAMES, k=3), light.predict(NAMES, k=3)):
        assert (a.label, a.as_read, a.abstained, a.caveats) == (b.label, b.as_read, b.abstained, b.caveats)
        assert [label for label, _ in a.top] == [label for label, _ in b.top]


def test_onnx_agrees_with_torch_on_the_whole_test_split(shipped_onnx, real_data):
    clf = load_model(shipped_checkpoint(), backend="torch")
    seed = clf.checkpoint.train_config.get("seed", 0)
    names = [name for name, _ in split_dataset(load_dataset(real_data), seed)["test"]]
    expected, got = clf.probabilities(names), load_model(shipped_onnx).probabilities(names)
    assert len(names) > 1000
    assert abs(expected - got).max() < 1e-4
    assert (expected.argmax(1) == got.argmax(1)).all()


def test_predict_reads_onnx_through_the_cli_as_it_reads_the_checkpoint(shipped_onnx):
    names = ["Jones", "Иванов", "山田", "...", "Nakamura"]
    assert ok("predict", *names, "--checkpoint", shipped_onnx) == ok("predict", *names, "--backend", "torch")
    as_json = [json.loads(line) for line in ok("predict", *names, "--json", "--min-confidence", "0.9",
                                                  "--checkpoint", shipped_onnx).splitlines()]
    expected = [json.loads(line) for line in ok("predict", *names, "--json", "--min-confidence", "0.9", "--backend",
                                                "torch").splitlines()]
    assert [row["label"] for row in as_json] == [row["label"] for row in expected]
    for row, want in zip(as_json, expected):
        for p, q in zip(row["predictions"], want["predictions"]):
            assert p["label"] == q["label"] and abs(p["probability"] - q["probability"]) < 1e-4


def test_predict_from_onnx_never_imports_torch(shipped_onnx, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Jones\nNakamura\n")
    script = f"""
import sys
from charclf.cli import main
try:
    main(["predict", "--checkpoint", {str(shipped_onnx)!r}, "--file", {str(names)!r}, "--json"])
except SystemExit as e:
    assert not e.code, e.code
import charclf
assert charclf.load({str(shipped_onnx)!r}).predict(["Jones"])[0].label == "English"
assert "torch" not in sys.modules, "torch was imported"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["name"] for line in done.stdout.splitlines()] == ["Jones", "Nakamura"]


def without(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter in which `module` cannot be imported."""
    script = f"import sys; sys.modules[{module!r}] = None; from charclf.cli import main; main({list(args)!r})"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_without_torch_onnx_still_predicts_and_torch_commands_say_what_to_install(shipped_onnx, tmp_path):
    done = without("torch", "predict", "--checkpoint", str(shipped_onnx), "Jones")
    assert done.returncode == 0 and done.stdout.startswith("Jones  English"), done.stderr
    done = without("torch", "predict", "Jones")  # the shipped model's .onnx
    assert done.returncode == 0 and done.stdout.startswith("Jones  English"), done.stderr
    lone = tmp_path / "lone.pt"  # a checkpoint without its export
    lone.write_bytes(shipped_checkpoint().read_bytes())
    done = without("torch", "predict", "--checkpoint", str(lone), "Jones")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"Error: {lone}: reading a .pt checkpoint needs torch: {install_command('train')}")
    for command in (["export", "m.onnx"], ["train", "--epochs", "1"]):
        done = without("torch", *command)
        assert (done.returncode, done.stderr) == (1, f"Error: this command needs torch: {install_command('train')}\n")
    assert without("torch", "--help").returncode == 0
    done = without("torch", "predict", "--checkpoint", str(shipped_onnx), "--device", "cuda", "Jones")
    assert done.returncode == 2 and "runs on the CPU" in done.stderr
    done = without("onnxruntime", "predict", "--checkpoint", str(shipped_onnx), "Jones")
    assert done.returncode == 1 and "pip install 'onnxruntime" in done.stderr and "Traceback" not in done.stderr
    done = without("onnx", "export", str(shipped_onnx.with_name("other.onnx")))
    assert done.returncode == 1 and install_command("train") in done.stderr


def random_checkpoint(**options) -> Checkpoint:
    """A model of the given shape with its initial (random) weights: export must not depend on training."""
    torch.manual_seed(0)
    config = ModelConfig(arch=options.pop("arch", "gru"), n_letters=len(DEFAULT_ALPHABET), n_classes=4, **options)
    return Checkpoint(config, DEFAULT_ALPHABET, ["A", "B", "C", "D"], calibration={"temperature": 1.7},
                      state_dict=build_model(config).state_dict())


SHAPES = [dict(arch="gru"), dict(arch="lstm", num_layers=2), dict(arch="rnn", bidirectional=False, pooling="last"),
          dict(arch="gru", pooling="last", num_layers=2), dict(arch="lstm", pooling="last+max", embedding_dim=0),
          dict(arch="rnn", pooling="max", lowercase=False), dict(arch="gru", bidirectional=False, pooling="mean+max"),
          dict(arch="gru", spelling_weight=0.3),
          dict(arch="lstm", spelling_weight=1.0, bidirectional=False, lowercase=False),
          dict(arch="gru", members=2, spelling_weight=0.3),
          # The tutorial's network (--preset tutorial): only the last state reaches the answer.
          dict(arch="rnn", bidirectional=False, pooling="last", embedding_dim=0, lowercase=False, spelling_weight=0.0)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s.values())))
def test_the_export_gives_the_models_numbers_for_every_shape(shape, tmp_path):
    import onnx

    checkpoint = random_checkpoint(**shape)
    clf = Classifier.from_checkpoint(checkpoint, device="cpu")
    names = ["Jones", "Li", "X", "Nakamura", "Wolfeschlegelstein", "abc", "De la Cruz"]
    model_names = [n.lower() for n in names] if checkpoint.model_config.lowercase else names
    letters, lengths = index_batch(model_names, checkpoint.alphabet)
    with torch.no_grad():
        padded, _ = exported(checkpoint)(letters, lengths)  # one batch of every length, padded
    assert abs(padded.numpy() - clf.probabilities(names)).max() < 1e-5
    path = tmp_path / "m.pt"
    save_checkpoint(path, checkpoint)
    ok("export", "--checkpoint", path, tmp_path / "m.onnx")
    light = load_model(tmp_path / "m.onnx")
    assert abs(light.probabilities(names) - padded.numpy()).max() < 1e-5
    graph = light.backend.session.run(["probabilities"], {"letters": letters.numpy(), "lengths": lengths.numpy()})[0]
    assert abs(graph - padded.numpy()).max() < 1e-5
    # One recurrent node per layer, both directions in it, given each name's length: no reversing gathers.
    config = checkpoint.model_config
    recurrent = [n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == config.arch.upper()]
    assert len(recurrent) == config.num_layers * config.members and all(n.input[4] for n in recurrent)  # sequence_lens


def test_torchscript_export_runs_without_charclf(tmp_path):
    out = tmp_path / "model.pts"
    ok("export", "--format", "torchscript", out)
    extra = {"charclf_card.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    clf = load_model(shipped_checkpoint(), backend="torch")
    letters, lengths = index_batch(["jones", "nakamura", "li"], clf.alphabet)
    probabilities, _ = module(letters, lengths)
    assert abs(probabilities.detach().numpy() - clf.probabilities(["Jones", "Nakamura", "Li"])).max() < 1e-5
    assert json.loads(extra["charclf_card.json"])["labels"] == clf.labels


def test_bad_exports_and_bad_onnx_files_are_one_line_errors(tiny_data, tmp_path):
    ngram = tmp_path / "ngram.pt"
    ok("train", "--data", tiny_data, "--model", "ngram", "--no-progress", "--out", ngram)
    result = CliRunner().invoke(main, ["export", "--checkpoint", str(ngram), str(tmp_path / "n.onnx")])
    assert result.exit_code == 1 and "the n-gram baseline is not exported" in result.output
    assert not (tmp_path / "n.onnx").exists()
    assert "n-gram logistic regression over 1-5-grams in 262144 buckets" in ok("info", "--checkpoint", ngram)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model at all")
    for command in (["predict", "Jones"], ["info"]):
        result = CliRunner().invoke(main, [*command, "--checkpoint", str(broken)])
        assert result.exit_code == 1 and result.output.startswith(f"Error: {broken} is not a readable ONNX model")
    result = CliRunner().invoke(main, ["predict", "Jones", "--checkpoint", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 1 and "no checkpoint file at" in result.output


def test_an_onnx_model_charclf_did_not_export_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = CliRunner().invoke(main, ["predict", "Jones", "--checkpoint", str(path)])
    assert result.exit_code == 1 and "not one charclf exported" in result.output


def test_a_failed_export_leaves_an_existing_file_as_it_was(shipped_onnx, tmp_path):
    """A failed export leaves an existing file as it was."""
    out = tmp_path / "model.onnx"
    out.write_bytes(shipped_onnx.read_bytes())
    checkpoint = load_checkpoint(shipped_checkpoint())
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, replace(checkpoint, model_config=replace(checkpoint.model_config, arch="ngram")))
    result = CliRunner().invoke(main, ["export", "--checkpoint", str(bad), str(out)])
    assert result.exit_code == 1 and out.read_bytes() == shipped_onnx.read_bytes()


def test_threads_reach_onnx_runtime(shipped_onnx):
    assert load_model(shipped_onnx, threads=2).backend.threads == 2
    assert ok("predict", "Jones", "--threads", "2", "--checkpoint", shipped_onnx).startswith("Jones  English")
    result = CliRunner().invoke(main, ["predict", "Jones", "--checkpoint", str(shipped_onnx)],
                                env={"CHARCLF_THREADS": "x"})
    assert result.exit_code == 2 and "CHARCLF_THREADS must be a whole number" in result.output


def _description(path, **changes) -> str:
    import onnx

    meta = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    return json.dumps({**json.loads(meta["charclf.description"]), **changes})


@pytest.mark.parametrize("key, value, message", [
    ("charclf.description", dict(labels=[1, None]), "labels do not match its model config"),
    ("charclf.description", dict(labels=["English"] * 18), "labels repeat"),
    ("charclf.description", "[not json", "description is not readable JSON"),
    ("charclf.description", dict(calibration={"temperature": float("nan")}), "temperature is not a positive number"),
    ("charclf.description", dict(alphabet="aaaa"), "alphabet does not match its model config"),
    ("charclf.description", dict(scripts={"probabilities": {"English": {"Latin": "x"}}}), "script table"),
    ("charclf.format", "7", "metadata format '7' is not supported"),
])
def test_hostile_onnx_metadata_is_one_line(shipped_onnx, tmp_path, key, value, message):
    import onnx

    model = onnx.load(str(shipped_onnx))
    value = _description(shipped_onnx, **value) if isinstance(value, dict) else value
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
    hostile = tmp_path / "hostile.onnx"
    onnx.save(model, str(hostile))
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(hostile), "Jones"])
    assert result.exit_code == 1 and message in result.output and len(result.output.splitlines()) == 1


def test_an_onnx_path_that_is_a_pipe_or_a_device_is_named(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.onnx")
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    for name, kind in (("pipe.onnx", "a pipe"), ("zero.onnx", "a device")):
        result = CliRunner().invoke(main, ["predict", "--checkpoint", str(tmp_path / name), "Jones"])
        assert result.exit_code == 1 and f"is {kind}, not a model file" in result.output
