"""Distillation (charclf.training.distill) and the recipe that uses it (`charclf train --preset best`)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.config import ModelConfig, TrainConfig
from charclf.files.checkpoint import load_checkpoint
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.inference import batched_logits
from charclf.training import refit
from charclf.training.distill import Teachers, check_distilling, crossovers, distilled_loss
from charclf.training.train import train

from tests.conftest import write_made_up_languages

SMALL = {"hidden_size": 16, "spelling_rank": 8}


@pytest.fixture
def names(tmp_path) -> Path:
    return write_made_up_languages(tmp_path / "names", per_label=150, seed=1, longest=10)


def test_a_crossover_is_the_start_of_one_name_and_the_end_of_another_of_its_label():
    torch.manual_seed(0)
    names = ["Jones", "Harrison", "Smith", "Nakamura", "Tanaka", "Li"]
    labels = torch.tensor([0, 0, 0, 1, 1, 2])  # Li's label has no partner
    made, made_labels = crossovers(names, labels, share=8.0)
    assert 30 <= len(made) <= 48 and len(made) == len(made_labels)  # about 8 x 6 draws, Li's skipped
    by_label = {0: names[:3], 1: names[3:5]}
    for string, label in zip(made, made_labels.tolist()):
        assert label in by_label  # never label 2: no other name to cross Li with
        splits = [(head, tail) for head in by_label[label] for tail in by_label[label] if head != tail
                  for i in range(1, len(head)) for j in range(1, len(tail)) if head[:i] + tail[j:] == string]
        assert splits, string
    assert crossovers(names, labels, share=0.0)[0] == []


def test_the_distilled_loss_mixes_the_label_loss_on_real_names_with_the_teachers_kl_on_all():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    teacher = torch.log_softmax(torch.randn(6, 4), dim=1)
    label_loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    # Weight 0: the label loss on the first 4 rows (the dataset's names) alone.
    assert torch.allclose(distilled_loss(logits, teacher, targets, 4, label_loss, 0.0),
                          label_loss(logits[:4], targets[:4]))
    # Weight 1: the KL divergence from the teacher, zero when the network answers as the teacher does.
    assert distilled_loss(teacher, teacher, targets, 4, label_loss, 1.0).abs() < 1e-6
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits, 1), teacher, log_target=True, reduction="batchmean")
    assert torch.allclose(distilled_loss(logits, teacher, targets, 4, label_loss, 1.0), kl)


def test_a_teacher_and_a_distill_weight_go_together_and_only_for_one_network(tmp_path):
    with pytest.raises(ValueError, match="both a teacher and a distill_weight"):
        check_distilling(None, 0.5, 1)
    with pytest.raises(ValueError, match="both a teacher and a distill_weight"):
        check_distilling(Teachers(tmp_path / "t.pt"), 0.0, 1)
    with pytest.raises(ValueError, match="members 1"):
        check_distilling(Teachers(tmp_path / "t.pt"), 0.5, 3)
    with pytest.raises(ValueError, match="distill_weight must be in"):
        TrainConfig(distill_weight=1.5)


def test_the_refit_learns_from_the_refitted_teachers(tmp_path):
    """The first run's teacher never saw the validation names; the refit's did, as the refit does."""
    teachers = Teachers(first=tmp_path / "first.pt", refit=tmp_path / "refit.pt")
    model_config = ModelConfig(arch="gru", n_letters=len(DEFAULT_ALPHABET), n_classes=3)
    run = SimpleNamespace(info={"data_dir": "x"}, source=SimpleNamespace(fingerprint="f"), model_config=model_config,
                          config=TrainConfig(), device=torch.device("cpu"), teachers=teachers)
    assert refit.job(run, threads=1)["teacher"] == str(tmp_path / "refit.pt")
    assert Teachers.from_json(teachers.to_json()) == teachers


def test_a_network_learning_from_a_teacher_answers_as_the_teacher_does(names, tmp_path):
    """The teacher learnt the languages under swapped names (Aish's names labelled Bork, Bork's
    Aish): a network that learns from it alone answers as it does, against the dataset's labels."""
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for label, other in (("Aish", "Bork"), ("Bork", "Aish"), ("Clem", "Clem")):
        (swapped / f"{other}.txt").write_text((names / f"{label}.txt").read_text())

    def fit(data, out, **config):
        return train(data, tmp_path / out, model_options=SMALL, progress=False,
                     config=TrainConfig(epochs=4, batch_size=32, refit=False, **config),
                     teachers=Teachers(tmp_path / "teacher.pt") if config.get("distill_weight") else None)

    fit(swapped, "teacher.pt")
    fit(names, "labels.pt")
    fit(names, "student.pt", distill_weight=1.0, crossover=1.0)

    def answers(path):
        model = load_checkpoint(path).build_model()
        probe = [name for file in sorted(names.glob("*.txt")) for name in file.read_text().split()]
        return batched_logits(model, probe, DEFAULT_ALPHABET, torch.device("cpu")).argmax(dim=1)

    teacher, labels, student = (answers(tmp_path / f"{name}.pt") for name in ("teacher", "labels", "student"))
    assert load_checkpoint(tmp_path / "labels.pt").labels == ["Aish", "Bork", "Clem"]  # the same order
    assert (student == teacher).float().mean() > 0.9  # the teacher's answers, swapped
    assert (labels == teacher).float().mean() < 0.5  # the labels' answers are another thing


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "3"], "--preset best sets the model and training options itself: drop --epochs"),
    (["--model", "ngram"], "--preset best trains networks"),
    (["--resume"], "--preset best cannot --resume"),
])
def test_the_best_preset_refuses_other_options_in_one_line(extra, message, names, tmp_path):
    result = CliRunner().invoke(main, ["train", "--preset", "best", "--data", str(names), "--out",
                                       str(tmp_path / "m.pt"), *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.pt").exists()


def test_the_best_preset_refuses_a_bad_out_before_training(names, tmp_path):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    result = CliRunner().invoke(main, ["train", "--preset", "best", "--data", str(names), "--out", str(taken)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert taken.read_text() == "mine"


@pytest.mark.slow
def test_the_best_preset_trains_one_network_that_learnt_from_an_ensemble(names, tmp_path):
    out = tmp_path / "best.pt"
    result = CliRunner().invoke(main, ["train", "--preset", "best", "--data", str(names), "--out", str(out),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "teachers:   an ensemble of 5 networks" in result.output
    checkpoint = load_checkpoint(out)
    assert checkpoint.model_config.members == 1 and checkpoint.model_config.hidden_size == 128  # one default network
    m = checkpoint.metrics
    assert m["recipe"]["name"] == "best" and m["recipe"]["teachers"]["members"] == 5
    assert m["refit"]["trained_on"] == "train+val" and checkpoint.train_config["distill_weight"] > 0
    assert out.with_suffix(".onnx").is_file()  # the light path's file, as for any run
    assert not list(tmp_path.glob("*teachers*"))  # the teachers were temporary
    info = CliRunner().invoke(main, ["info", "--checkpoint", str(out)])
    assert "recipe:      best: learnt from an ensemble of 5 networks" in info.output
    predicted = CliRunner().invoke(main, ["predict", "Aeiho", "--checkpoint", str(out), "--json"])
    assert predicted.exit_code == 0 and json.loads(predicted.output.splitlines()[0])["predictions"]


def test_an_interrupted_recipe_says_it_starts_over_and_leaves_nothing_to_resume(tmp_path):
    from charclf.training.recipes import restarts_on_interrupt
    from charclf.training.train import TrainingInterrupted, state_path

    out = tmp_path / "best.pt"
    out.write_bytes(b"the student's best so far")
    state_path(out).write_bytes(b"state")
    with pytest.raises(TrainingInterrupted) as caught, restarts_on_interrupt(2, out):
        raise TrainingInterrupted("interrupted in epoch 3: continue with --resume")
    assert "step 2 of 2 of --preset best" in str(caught.value) and "--resume" not in str(caught.value)
    assert str(out) in str(caught.value) and not state_path(out).exists()
