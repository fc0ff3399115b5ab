import pytest
import torch
from torch import nn

from charclf.training.averaging import WeightAverage


def test_the_average_follows_the_weights_with_a_warm_up():
    """decay_t = min(decay, (1 + t) / (10 + t)): the first updates mostly take the new weights."""
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.5)
    expected = 0.0
    for t, value in enumerate((1.0, 2.0, 4.0, 8.0)):
        with torch.no_grad():
            model.weight.fill_(value)
        average.update(model)
        decay = min(0.5, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * value
        assert average.model.weight.flatten().tolist() == pytest.approx([expected] * 2)
    assert not average.model.weight.requires_grad


def test_the_average_state_round_trips():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.998)
    average.update(model)
    again = WeightAverage(nn.Linear(3, 2), decay=0.998)
    again.load_state_dict(average.state_dict())
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(model)
    again.update(model)
    assert torch.equal(again.model.weight, average.model.weight) and again.updates == 2
