"""The next-letter training aid: its targets are the right letters, it leaves the classifier's
outputs alone, and nothing of it reaches the saved model."""

import pytest
import torch

from charclf.config import ModelConfig
from charclf.models.model import NameClassifier
from charclf.models.nextletter import NextLetterTask
from charclf.names.text import DEFAULT_ALPHABET


def task_for(bidirectional=True):
    torch.manual_seed(0)
    config = ModelConfig(arch="gru", n_letters=len(DEFAULT_ALPHABET), n_classes=3, hidden_size=32,
                         bidirectional=bidirectional, dropout=0.0, spelling_weight=0.0)  # its own layers
    return NextLetterTask(NameClassifier(config))


def run(task, names):
    padded, lengths = task.classifier.index(names, DEFAULT_ALPHABET)
    return task(padded, lengths)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_it_learns_to_spell_the_names_it_is_shown(bidirectional):
    """Trained on two names alone, the heads predict each next (and previous) letter and the ends:
    only right targets can be learnt this well."""
    task = task_for(bidirectional)
    names = ["abcd", "dcbxa"]
    optimizer = torch.optim.Adam(task.parameters(), lr=0.02)
    for _ in range(300):
        _, loss = run(task, names)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    padded, lengths = task.classifier.index(names, DEFAULT_ALPHABET)
    outputs = task.classifier.read(padded, lengths)
    end = len(DEFAULT_ALPHABET)
    following = task.forward_head(outputs[0, :4, :32]).argmax(1).tolist()
    assert following == [DEFAULT_ALPHABET.index(c) for c in "bcd"] + [end]
    if bidirectional:
        preceding = task.backward_head(outputs[1, :5, 32:]).argmax(1).tolist()
        assert preceding == [end] + [DEFAULT_ALPHABET.index(c) for c in "dcbx"]


def test_the_logits_are_the_classifiers_own():
    task = task_for().eval()
    names = ["Jones", "Li", "Nakamura"]
    logits, _ = run(task, names)
    padded, lengths = task.classifier.index(names, DEFAULT_ALPHABET)
    assert torch.allclose(logits, task.classifier(padded, lengths))


def test_training_with_it_saves_a_plain_classifier(tiny_data, tmp_path):
    from click.testing import CliRunner

    from charclf.cli import main
    from charclf.files.checkpoint import load_checkpoint

    result = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--epochs", "2", "--hidden-size", "8",
                                       "--no-progress", "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert checkpoint.train_config["next_letter_weight"] > 0
    assert not any("head" in key and key != "head.weight" and key != "head.bias" for key in checkpoint.state_dict)
    assert isinstance(checkpoint.build_model(), NameClassifier)
