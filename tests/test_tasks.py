"""What a training step runs (charclf.models.tasks): one call, one loss, whatever the model."""

import pytest
import torch

from charclf.config import ModelConfig
from charclf.models.build import build_model
from charclf.models.nextletter import NextLetterTask
from charclf.models.tasks import TrainingTasks
from charclf.names.text import DEFAULT_ALPHABET

NAMES = ["Jones", "Li", "Nakamura", "Abe"]
TARGETS = torch.tensor([0, 1, 2, 1])


def model_for(**options):
    torch.manual_seed(0)
    config = ModelConfig(arch="gru", n_letters=len(DEFAULT_ALPHABET), n_classes=3, hidden_size=8, dropout=0.0,
                         **options)
    return build_model(config)


def loss_of(logits):
    return torch.nn.functional.cross_entropy(logits, TARGETS)


@pytest.mark.parametrize("options", [{}, {"spelling_weight": 0.0}, {"members": 2},
                                     {"members": 2, "spelling_weight": 0.0}])
@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_the_loss_is_each_networks_label_loss_plus_its_weighted_letter_loss(options, weight):
    model = model_for(**options)
    tasks = TrainingTasks(model, weight)
    letters, lengths = model.index(NAMES, DEFAULT_ALPHABET)
    loss, label_loss = tasks(letters, lengths, TARGETS, loss_of)
    networks = model.members if options.get("members") else [model]
    assert [task.classifier if weight else task for task in tasks.tasks] == list(networks)
    label_losses, letter_losses = [], []
    for network, task in zip(networks, tasks.tasks):
        if weight:  # the network's own logits, and its letter loss
            logits, letter = task(letters, lengths, TARGETS)
            assert isinstance(task, NextLetterTask) and torch.allclose(logits, network(letters, lengths))
            letter_losses.append(letter)
        else:
            logits = network(letters, lengths)
        label_losses.append(loss_of(logits))
    assert torch.allclose(loss, sum(label_losses) + weight * sum(letter_losses))
    assert torch.allclose(label_loss, sum(label_losses) / len(networks))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_lone_networks_state_saved_without_the_tasks_prefix_still_loads():
    model = model_for()
    tasks = TrainingTasks(model, 0.5)
    old = {key.removeprefix("tasks.0."): value.clone() for key, value in tasks.state_dict().items()}
    fresh = TrainingTasks(model_for(), 0.5)
    fresh.load_state_dict(old)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), tasks.state_dict().values()))
