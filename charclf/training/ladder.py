"""What `charclf compare` trains besides each backbone with its own defaults: the ladder from the
PyTorch tutorial's network to charclf's default, one change per rung (--ladder), and the backbones
on equal terms (--same-budget). Each is a list of Entry: a row of the comparison, trained once
per split seed (charclf.training.comparison)."""

from __future__ import annotations

from dataclasses import dataclass, field

from charclf.config import ARCHS, ModelConfig, TrainConfig, default_of, defaults_for
from charclf.training.recipes import TUTORIAL, TUTORIAL_ARCH


@dataclass(frozen=True)
class Entry:
    """One row of a comparison: a backbone and the options it trains with (on top of its defaults)."""

    name: str
    arch: str
    options: dict = field(default_factory=dict)
    says: str = ""  # what the row is, for the table's legend

    def configs(self, seed: int, epochs: int | None = None) -> tuple[dict, TrainConfig]:
        """(model options, TrainConfig) for one split seed; `epochs` replaces every row's epochs."""
        return defaults_for(self.arch, **{**self.options, "seed": seed, "epochs": epochs or self.options.get("epochs")})


# The rungs after the tutorial: each sets these options to the default model's values ("arch": the
# default's GRU), in this order. The last rung is the default model itself (a test holds it so).
RUNGS = (
    ("batches", ("batch_size", "optimizer", "lr", "weight_decay", "clip_grad_norm", "epochs"),
     "mini-batches of 64 packed names, AdamW on a one-cycle schedule, clipped gradients, 12 epochs"),
    ("shuffled", ("sampling",), "every training name once per epoch, not label-first draws"),
    ("gru", ("arch",), "a GRU in place of the plain RNN (128 units)"),
    ("embedding", ("embedding_dim", "lowercase"), "a learned 48-wide embedding of lower-cased letters, not one-hot"),
    ("bidirectional", ("bidirectional",), "a second GRU reading each name backwards"),
    ("pooling", ("pooling",), "the mean and the max of every letter's states, not the last state"),
    ("regularised", ("dropout", "label_smoothing", "average_decay"),
     "dropout 0.25, label smoothing 0.1, a moving average of the weights"),
    ("spelling", ("spelling_weight", "next_letter_weight"),
     "spelling heads, trained on next-letter prediction too"),
    ("refit", ("refit",), "refit on train + validation: charclf's default model"),
)
DEFAULT_ARCH = "gru"


def ladder() -> list[Entry]:
    """The tutorial's network (charclf.training.recipes.TUTORIAL), then one Entry per rung, each the
    one before with its options set to the default model's."""
    options, arch = dict(TUTORIAL), TUTORIAL_ARCH
    entries = [Entry("tutorial", arch, dict(options), "the PyTorch tutorial: one-hot letters, an nn.RNN, the last "
                                                      "state; SGD at 0.005, one name per step")]
    for name, changed, says in RUNGS:
        for option in changed:
            if option == "arch":
                arch = DEFAULT_ARCH
            else:
                options[option] = default_of(DEFAULT_ARCH, option)
        entries.append(Entry(name, arch, dict(options), says))
    return entries


def same_budget(archs: list[str], n_letters: int, n_classes: int) -> list[Entry]:
    """Each backbone with the default GRU's training settings (not its own ARCH_DEFAULTS: the same
    learning rate and clipping), its hidden size the largest whose parameters stay within the
    default GRU's."""
    from charclf.models.build import weight_shapes

    def parameters(arch: str, hidden: int) -> int:
        options, _ = defaults_for(DEFAULT_ARCH, hidden_size=hidden)
        shapes = weight_shapes(ModelConfig(arch=arch, n_letters=n_letters, n_classes=n_classes, **options))
        return sum(_product(shape) for shape in shapes.values())

    budget = parameters(DEFAULT_ARCH, default_of(DEFAULT_ARCH, "hidden_size"))
    shared = {name: default_of(DEFAULT_ARCH, name) for name in ("lr", "clip_grad_norm", "hidden_size")}
    entries = []
    for arch in archs:
        if arch not in ARCHS:
            raise ValueError(f"--same-budget compares the recurrent backbones ({', '.join(ARCHS)}), not {arch}")
        low, high = 1, 4 * shared["hidden_size"]  # parameters grow with the hidden size
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if parameters(arch, middle) <= budget else (low, middle - 1)
        entries.append(Entry(arch, arch, {**shared, "hidden_size": low},
                             f"hidden {low}, {parameters(arch, low):,} parameters (budget {budget:,})"))
    return entries


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
