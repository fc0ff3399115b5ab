import threading

import pytest
import torch

from charclf.config import ARCHS, POOLINGS, ModelConfig
from charclf.data.tensors import index_batch
from charclf.errors import DeviceError
from charclf.models.build import build_model
from charclf.models.model import BACKBONES, NameClassifier, pick_device
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.inference import batched_logits, network_batch

N_LETTERS = len(DEFAULT_ALPHABET)
NAMES = ["Li", "Jones", "Abe", "Nakamura", "O'Neil"]


def model_for(arch, **options):
    torch.manual_seed(0)
    return NameClassifier(ModelConfig(arch=arch, n_letters=N_LETTERS, n_classes=7, **options)).eval()


def test_cli_choices_are_the_backbone_table():
    assert sorted(BACKBONES) == sorted(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_output_shape(arch, bidirectional, pooling):
    model = model_for(arch, bidirectional=bidirectional, pooling=pooling, num_layers=2, hidden_size=16)
    assert model(*index_batch(NAMES, DEFAULT_ALPHABET)).shape == (len(NAMES), 7)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_names_logits_do_not_depend_on_its_batch(arch):
    """Packing must hide padding: a name scored alone equals the same name beside longer ones."""
    model = model_for(arch, hidden_size=16)
    together = batched_logits(model, NAMES, DEFAULT_ALPHABET, torch.device("cpu"))
    for i, name in enumerate(NAMES):
        alone = batched_logits(model, [name], DEFAULT_ALPHABET, torch.device("cpu"))
        assert torch.allclose(alone[0], together[i], atol=1e-5)


def test_repeated_names_get_their_own_rows_in_input_order():
    model = model_for("gru", hidden_size=16)
    cpu = torch.device("cpu")
    repeated = ["Smith", NAMES[0], "Smith", NAMES[1], NAMES[0], "Smith"]
    together = batched_logits(model, repeated, DEFAULT_ALPHABET, cpu)
    assert together.shape == (6, 7)
    for i, name in enumerate(repeated):
        assert torch.allclose(together[i], batched_logits(model, [name], DEFAULT_ALPHABET, cpu)[0], atol=1e-5)
    assert torch.equal(together[0], together[2]) and not torch.equal(together[0], together[1])


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown arch"):
        ModelConfig(arch="transformer", n_letters=3, n_classes=2)
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        ModelConfig(arch="gru", n_letters=3, n_classes=2, hidden_size=0)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown device"):
        pick_device("tpu-please")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="no usable CUDA"):
        pick_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("arch", ARCHS)
def test_cuda_matches_cpu(arch):
    model = model_for(arch, hidden_size=16)
    on_cpu = batched_logits(model, NAMES, DEFAULT_ALPHABET, torch.device("cpu"))
    on_gpu = batched_logits(model.to("cuda"), NAMES, DEFAULT_ALPHABET, torch.device("cuda"))
    assert on_gpu.device.type == "cpu"
    assert torch.allclose(on_cpu, on_gpu, atol=1e-4)


def test_defaults_for_merges_arch_defaults_and_overrides():
    from charclf.config import ARCH_DEFAULTS, default_of, defaults_for

    options, config = defaults_for("rnn", epochs=3, dropout=None)
    assert options["hidden_size"] == default_of("rnn", "hidden_size")
    assert options["hidden_size"] == ARCH_DEFAULTS["rnn"]["hidden_size"]
    assert config.epochs == 3 and config.clip_grad_norm == ARCH_DEFAULTS["rnn"]["clip_grad_norm"]
    assert defaults_for("lstm")[1].lr == ARCH_DEFAULTS["lstm"]["lr"] == default_of("lstm", "lr")
    with pytest.raises(ValueError, match="unknown option"):
        defaults_for("gru", colour="blue")


def test_one_source_of_defaults():
    """ModelConfig() and TrainConfig() are what `charclf train` trains: the default gru changes nothing."""
    from dataclasses import fields

    from charclf.config import ARCH_DEFAULTS, TrainConfig, defaults_for

    assert ARCH_DEFAULTS["gru"] == {}
    options, config = defaults_for("gru", seed=1)
    assert config == TrainConfig(seed=1)
    plain = ModelConfig(arch="gru", n_letters=N_LETTERS, n_classes=7)
    assert options == {f.name: getattr(plain, f.name) for f in fields(ModelConfig)
                       if f.name not in ("arch", "n_letters", "n_classes")}
    # The backbones do differ.
    assert defaults_for("rnn")[1] != defaults_for("gru")[1]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("options", [{}, {"embedding_dim": 0, "num_layers": 2}, {"lowercase": False}])
def test_fast_inference_equals_the_packed_forward(arch, pooling, bidirectional, options):
    """batched_logits (names grouped by length, nothing to pack) == forward() on one packed batch."""
    names = ["Li", "Jones", "Abe", "Nakamura", "O'Neil", "Ng", "Smith", "de la Cruz", "X", "Wojciechowski"]
    model = model_for(arch, pooling=pooling, bidirectional=bidirectional, hidden_size=16, **options)
    with torch.no_grad():
        packed = model(*model.index(names, DEFAULT_ALPHABET))
    fast = batched_logits(model, names, DEFAULT_ALPHABET, torch.device("cpu"), batch_size=2)
    assert torch.allclose(fast, packed, atol=1e-5)


def test_cpu_batches_are_small_enough_for_the_cache_whatever_the_threads():
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 64):  # per worker: each thread runs batches of its own
            torch.set_num_threads(count)
            assert network_batch(torch.device("cpu")) == 256
    finally:
        torch.set_num_threads(threads)
    assert network_batch(torch.device("cuda")) == 4096


def test_a_long_list_predicts_as_names_one_by_one_do():
    """More names than one network batch: every batch's rows land where their names are."""
    model = model_for("gru", hidden_size=16)
    names = [f"{a}{b}{c}{d}" for a in "BKLMNPRST" for b in "aeiou" for c in "lmnrstvz" for d in "aiou"][:600]
    names = names + ["Li", "Ng", "Li"]  # 600 names of 4 letters: three batches of one thread's 256
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        together = batched_logits(model, names, DEFAULT_ALPHABET, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    for i in (0, 255, 256, 511, 512, 599, 600, 601, 602):
        alone = batched_logits(model, [names[i]], DEFAULT_ALPHABET, torch.device("cpu"))
        assert torch.allclose(together[i], alone[0], atol=1e-5)


def test_several_threads_share_out_the_batches_and_give_the_same_logits():
    """With torch on 3 threads, 3 workers run the batches (each on one thread); the thread count
    is back to 3 afterwards, also when a batch fails."""
    model = model_for("gru", hidden_size=16)
    names = [f"{a}{b}{c}" * n for a in "BKLMN" for b in "aeiou" for c in "lmnrs" for n in (1, 2, 3)]  # 375
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = batched_logits(model, names, DEFAULT_ALPHABET, torch.device("cpu"), batch_size=16)
        torch.set_num_threads(3)
        seen = set()
        forward = model.forward

        def spy(letters, lengths):
            seen.add((threading.get_ident(), torch.get_num_threads()))
            return forward(letters, lengths)

        model.forward = spy
        shared = batched_logits(model, names, DEFAULT_ALPHABET, torch.device("cpu"), batch_size=16)
        assert torch.allclose(shared, alone, atol=1e-6) and torch.get_num_threads() == 3
        assert len({ident for ident, _ in seen}) > 1 and {count for _, count in seen} == {1}
        model.forward = lambda letters, lengths: 1 / 0
        with pytest.raises(ZeroDivisionError):
            batched_logits(model, names, DEFAULT_ALPHABET, torch.device("cpu"), batch_size=16)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)


def test_lowercase_models_read_names_in_any_case():
    model = model_for("gru", hidden_size=8)
    logits = batched_logits(model, ["Jones", "JONES", "jones"], DEFAULT_ALPHABET, torch.device("cpu"))
    assert torch.allclose(logits[0], logits[1]) and torch.allclose(logits[0], logits[2])
    sensitive = model_for("gru", hidden_size=8, lowercase=False)
    logits = batched_logits(sensitive, ["Jones", "JONES"], DEFAULT_ALPHABET, torch.device("cpu"))
    assert not torch.allclose(logits[0], logits[1])


@pytest.mark.parametrize("embedding_dim", [0, 12])
def test_one_hot_and_embedded_inputs(embedding_dim):
    model = model_for("gru", hidden_size=8, embedding_dim=embedding_dim)
    assert hasattr(model, "embed") == bool(embedding_dim)  # else one-hot rows
    assert model(*index_batch(NAMES, DEFAULT_ALPHABET)).shape == (len(NAMES), 7)



@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru", "ngram"])
@pytest.mark.parametrize("options", [{}, {"bidirectional": False, "num_layers": 2, "embedding_dim": 0},
                                     {"pooling": "last", "num_layers": 3, "hidden_size": 7, "ngram_buckets": 64}])
def test_weight_shapes_are_the_built_models(arch, options):
    from charclf.models.build import weight_shapes

    config = ModelConfig(arch=arch, n_letters=57, n_classes=5, **options)
    built = {key: tuple(t.shape) for key, t in build_model(config).state_dict().items()}
    expected = weight_shapes(config)
    if arch == "ngram":  # stored sparsely: the rows seen in training, at most every bucket
        assert set(expected) == set(built)
        assert all(b <= e for key in built for b, e in zip(built[key], expected[key]))
    else:
        assert expected == built


@pytest.mark.parametrize("arch", ARCHS)
def test_a_training_step_packs_even_a_batch_of_one_length(arch, monkeypatch):
    """Training reads every batch packed, as it always has, so that a run's gradients (and so its
    numbers) stay what they were to the last bit; only prediction, with no gradient, skips packing
    names of one length (the same answers to a few 1e-7)."""
    import charclf.models.model as module

    torch.manual_seed(0)
    config = ModelConfig(arch=arch, n_letters=N_LETTERS, n_classes=7, spelling_weight=0.3)
    model = NameClassifier(config).eval()  # no dropout: the same numbers each time
    letters, lengths = index_batch(["Jones", "Smith", "Abeko", "Tanak"] * 8, DEFAULT_ALPHABET)  # no padding
    weights = torch.randn(len(letters), 7)

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        (model(letters, lengths) * weights).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    trained = gradients()
    monkeypatch.setattr(module, "padded", lambda rows, lengths: True)  # pack whatever the lengths
    packed = gradients()
    assert all(torch.equal(trained[name], packed[name]) for name in trained)
    with torch.inference_mode():
        predicted = model(letters, lengths)
    monkeypatch.undo()
    with torch.inference_mode():
        assert torch.allclose(model(letters, lengths), predicted, atol=1e-5)
