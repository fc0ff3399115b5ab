import os

import pytest
import torch

from charclf.config import ModelConfig
from charclf.errors import CheckpointError
from charclf.files.atomic import atomic_write
from charclf.files.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from charclf.models.model import NameClassifier
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.classifier import Classifier

LABELS = ["English", "Italian", "Japanese"]


def make_checkpoint(arch="lstm") -> Checkpoint:
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=3, hidden_size=8)
    model = NameClassifier(config)
    return Checkpoint(config, DEFAULT_ALPHABET, LABELS, {"seed": 3, "epochs": 1},
                      {"test": {"accuracy": 0.5, "macro_f1": 0.4}}, state_dict=model.state_dict())


def test_round_trip_keeps_everything_and_predicts_the_same(tmp_path):
    ck = make_checkpoint()
    path = tmp_path / "m.pt"
    save_checkpoint(path, ck)
    loaded = load_checkpoint(path)
    assert loaded.model_config == ck.model_config
    assert (loaded.alphabet, loaded.labels) == (DEFAULT_ALPHABET, LABELS)
    assert loaded.train_config == {"seed": 3, "epochs": 1}
    assert loaded.metrics == {"test": {"accuracy": 0.5, "macro_f1": 0.4}}
    before = Classifier.from_checkpoint(ck, device="cpu").predict(["Jones", "Rossi"], k=3)
    after = Classifier.from_checkpoint(loaded, device="cpu").predict(["Jones", "Rossi"], k=3)
    assert [p.top for p in before] == [p.top for p in after]
    assert [f for f in os.listdir(tmp_path)] == ["m.pt"]  # no temp files left


def test_loading_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": 1, "model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt.*refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.update(format=99), "format 99 is not supported"),
    (lambda p: p.pop("labels"), "missing labels"),
    (lambda p: p.update(labels=["A"]), "labels do not match"),
    (lambda p: p["model_config"].update(hidden_size=9), "weights do not fit"),
    (lambda p: p["model_config"].update(arch="transformer"), "bad model config"),
    (lambda p: p.update(calibration={"temperature": -1.0}), "temperature is not a positive number"),
    (lambda p: p.update(calibration={"temperature": float("nan")}), "temperature is not a positive number"),
    (lambda p: p.update(calibration={"temperature": "hot"}), "temperature is not a positive number"),
    (lambda p: p.update(calibration=[2.0]), "temperature is not a positive number"),
])
def test_wrong_contents_are_named(tmp_path, mutate, message):
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint())
    payload = torch.load(path, weights_only=True)
    mutate(payload)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message) as e:
        Classifier(load_checkpoint(path), device="cpu")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, os.urandom(5000), b"not a checkpoint\n"])
def test_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt is not a charclf checkpoint") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint())
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="m.pt"):
        load_checkpoint(path)


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint())
    before = path.read_bytes()

    def crash(f):
        f.write(b"half a checkpoint")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]


def test_a_checkpoint_without_calibration_reads_with_temperature_1(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint())
    payload = torch.load(path, weights_only=True)
    del payload["calibration"]  # as written before calibration existed
    torch.save(payload, path)
    assert load_checkpoint(path).temperature == 1.0


def test_the_temperature_round_trips(tmp_path):
    ck = make_checkpoint()
    ck.calibration = {"temperature": 1.7, "fit_on": "val"}
    save_checkpoint(tmp_path / "m.pt", ck)
    assert load_checkpoint(tmp_path / "m.pt").temperature == 1.7
