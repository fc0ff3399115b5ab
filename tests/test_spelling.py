"""Spelling heads: each label's log p(name | label) from the network's own states, added to the answer
(self-normalised: the actual letters' logits; or, as older models were saved, the exact softmax)."""

import pytest
import torch
from click.testing import CliRunner

from charclf.cli import main
from charclf.config import ModelConfig, TrainConfig
from charclf.files.checkpoint import load_checkpoint
from charclf.models.model import NameClassifier
from charclf.models.nextletter import NextLetterTask
from charclf.models.spelling import letter_codes
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.inference import batched_logits

NAMES = ["Jones", "Li", "X", "Nakamura", "O'Neil", "abc"]


def model_for(**options) -> NameClassifier:
    torch.manual_seed(0)
    config = ModelConfig(arch=options.pop("arch", "gru"), n_letters=len(DEFAULT_ALPHABET), n_classes=3,
                         hidden_size=16, spelling_weight=options.pop("spelling_weight", 0.5), **options)
    return NameClassifier(config).eval()


def spelt_by_hand(model: NameClassifier, name: str) -> torch.Tensor:
    """(n_classes,) log p(name | label), one letter at a time: each label's logit of the letter, minus
    the log of its softmax's normaliser when the model is saved as normalised."""
    padded, lengths = model.index([name], DEFAULT_ALPHABET)
    with torch.no_grad():
        outputs = model.read(padded, lengths)
    letters, hidden, codes = padded[0].tolist(), model.config.hidden_size, model.spelling.codes
    end = model.config.n_letters
    heads = [(model.spelling.forward_letters, 0, letters[1:] + [end])]
    if model.config.bidirectional:
        heads.append((model.spelling.backward_letters, hidden, [end] + letters[:-1]))
    total = torch.zeros(model.config.n_classes)
    for head, start, targets in heads:
        for t, target in enumerate(targets):
            with torch.no_grad():
                logits = head.letters(head.project(outputs[0, t, start:start + hidden]))
            for label in range(model.config.n_classes):
                own = logits[label * head.outputs:(label + 1) * head.outputs]
                total[label] += (torch.log_softmax(own, 0) if model.config.spelling_normalised else own)[codes[target]]
    return total / len(heads)


@pytest.mark.parametrize("options", [{}, {"bidirectional": False}, {"arch": "lstm", "lowercase": False},
                                     {"embedding_dim": 0, "num_layers": 2}, {"spelling_normalised": True},
                                     {"spelling_normalised": True, "bidirectional": False}])
def test_the_answer_is_the_heads_log_probabilities_plus_the_weighted_spelling(options):
    model = model_for(**options)
    padded, lengths = model.index(NAMES, DEFAULT_ALPHABET)
    with torch.no_grad():
        answer = model(padded, lengths)
        outputs = model.read(padded, lengths)
        head = torch.log_softmax(model.classify(outputs, lengths), 1)
    by_hand = torch.stack([spelt_by_hand(model, name) for name in NAMES])
    assert torch.allclose(answer, head + 0.5 * by_hand, atol=1e-4)
    # Prediction's same-length batches give the numbers of one padded batch.
    assert torch.allclose(batched_logits(model, NAMES, DEFAULT_ALPHABET, torch.device("cpu")), answer, atol=1e-5)


def test_a_lowercasing_model_spells_with_the_letters_it_can_read():
    codes = letter_codes(len(DEFAULT_ALPHABET), lowercase=True)
    assert codes[DEFAULT_ALPHABET.index("a")] == 0 and int(codes.max()) + 1 == 32  # 26 + " .,;'" + the end
    assert codes[DEFAULT_ALPHABET.index("A")] == codes[-1]  # never read: shares the end's output
    assert letter_codes(len(DEFAULT_ALPHABET), lowercase=False).tolist() == list(range(len(DEFAULT_ALPHABET) + 1))


def test_each_label_learns_its_own_spelling():
    """'abc' is label 0 and 'abd' label 1: after 'ab' the heads must say c under label 0 and d
    under label 1, and each name must be likeliest under its own label."""
    model = model_for(dropout=0.0).train()
    task = NextLetterTask(model)
    assert task.forward_head is None  # the spelling heads learn this task instead
    names, labels = ["abc", "abd"], torch.tensor([0, 1])
    padded, lengths = model.index(names, DEFAULT_ALPHABET)
    optimizer = torch.optim.Adam(task.parameters(), lr=0.02)
    for _ in range(200):
        _, loss = task(padded, lengths, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05  # the letters' cross-entropy and the penalty on the normalisers
    model.eval()
    with torch.no_grad():
        outputs = model.read(padded, lengths)
        spelt = model.spelling.log_likelihood(outputs, padded, lengths)  # (2, 3)
        ab = model.spelling.forward_letters.letters(model.spelling.forward_letters.project(outputs[0, 1, :16]))
    heads = model.spelling.forward_letters.outputs
    codes = model.spelling.codes
    assert ab[:heads].argmax() == codes[DEFAULT_ALPHABET.index("c")]
    assert ab[heads:2 * heads].argmax() == codes[DEFAULT_ALPHABET.index("d")]
    assert spelt.argmax(1).tolist() == [0, 1]
    # Self-normalised: the logits' normalisers stay near 1, so the actual letter's logit is its log p.
    scores = model.spelling.letter_scores(outputs, padded, lengths, normalise=True)
    assert scores.log_norms[scores.inside].abs().max() < 0.1
    assert torch.allclose(spelt, scores.log_probs().sum(1), atol=0.3)


def test_the_default_model_has_spelling_heads_and_the_label_loss_trains_them():
    assert ModelConfig(arch="gru", n_letters=57, n_classes=3).spelling_weight > 0
    assert TrainConfig().next_letter_weight > 0
    model = model_for(dropout=0.0).train()
    names, labels = ["abc", "abd"], torch.tensor([0, 1])
    padded, lengths = model.index(names, DEFAULT_ALPHABET)
    answer, _ = NextLetterTask(model)(padded, lengths, labels)
    torch.nn.functional.cross_entropy(answer, labels).backward()  # the label loss alone
    assert model.spelling.forward_letters.letters.weight.grad.abs().sum() > 0
    assert model.spelling.backward_letters.project.weight.grad.abs().sum() > 0


def test_train_predict_and_export_a_spelling_model_through_the_cli(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    run = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--epochs", "2", "--hidden-size", "8",
                                    "--spelling-weight", "0.3", "--spelling-rank", "4", "--no-progress",
                                    "--out", str(out)])
    assert run.exit_code == 0, run.output
    checkpoint = load_checkpoint(out)
    assert checkpoint.model_config.spelling_weight == 0.3
    assert "spelling.forward_letters.project.weight" in checkpoint.state_dict
    assert checkpoint.state_dict["spelling.forward_letters.project.weight"].shape == (4, 8)
    predicted = CliRunner().invoke(main, ["predict", "--checkpoint", str(out), "Jones", "--json"])
    assert predicted.exit_code == 0, predicted.output
    pytest.importorskip("onnx")
    exported = CliRunner().invoke(main, ["export", "--checkpoint", str(out), str(tmp_path / "m.onnx")])
    assert exported.exit_code == 0, exported.output


def test_spelling_heads_train_without_the_next_letter_task_too(tiny_data, tmp_path):
    """--next-letter-weight 0: the label loss alone shapes them (they stay in the model)."""
    run = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--epochs", "1", "--hidden-size", "8",
                                    "--next-letter-weight", "0", "--no-progress", "--out", str(tmp_path / "m.pt")])
    assert run.exit_code == 0, run.output
    assert "spelling.forward_letters.letters.weight" in load_checkpoint(tmp_path / "m.pt").state_dict
    off = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--epochs", "1", "--hidden-size", "8",
                                    "--spelling-weight", "0", "--no-progress", "--out", str(tmp_path / "plain.pt")])
    assert off.exit_code == 0, off.output
    assert not any(key.startswith("spelling.") for key in load_checkpoint(tmp_path / "plain.pt").state_dict)


def test_a_checkpoint_saved_before_spelling_heads_loads_without_them(tmp_path):
    """Older files have no spelling_weight: they were plain networks, whatever today's default is."""
    from charclf.files.checkpoint import Checkpoint, save_checkpoint

    model = model_for(spelling_weight=0.0)
    checkpoint = Checkpoint(model.config, DEFAULT_ALPHABET, ["a", "b", "c"], {"seed": 0}, {},
                            state_dict=model.state_dict())
    save_checkpoint(tmp_path / "old.pt", checkpoint)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    del payload["model_config"]["spelling_weight"], payload["model_config"]["spelling_rank"]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.model_config.spelling_weight == 0.0 and loaded.build_model().spelling is None
    info = CliRunner().invoke(main, ["info", "--checkpoint", str(tmp_path / "old.pt"), "--json"])
    assert info.exit_code == 0 and '"spelling_weight": 0.0' in info.output, info.output


def test_a_checkpoint_saved_before_self_normalised_heads_keeps_its_exact_softmax(tmp_path):
    """Spelling-head models saved without spelling_normalised answered with the normalisers: they
    still do, and give the answers they gave."""
    from charclf.files.checkpoint import Checkpoint, save_checkpoint

    model = model_for(spelling_normalised=True)
    save_checkpoint(tmp_path / "old.pt", Checkpoint(model.config, DEFAULT_ALPHABET, ["a", "b", "c"],
                                                     {"seed": 0}, {}, state_dict=model.state_dict()))
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    del payload["model_config"]["spelling_normalised"]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt").build_model().eval()
    assert loaded.spelling.normalised
    cpu = torch.device("cpu")
    assert torch.allclose(batched_logits(loaded, NAMES, DEFAULT_ALPHABET, cpu),
                          batched_logits(model, NAMES, DEFAULT_ALPHABET, cpu), atol=1e-6)
