"""Recipes: whole trainings, named by what they are for (`charclf train --preset NAME`).

- **default**: one run of the default network (charclf.config), about a minute and a half on two
  CPU cores.
- **tutorial**: the network of the PyTorch tutorial "Classifying Names with a Character-Level RNN",
  trained its way (TUTORIAL below), on charclf's split, saved as any model is. The first rung of
  `charclf compare --ladder` (charclf.training.ladder).
- **best**: the model charclf ships, within 20 minutes on two CPU cores. First the teachers: an
  ensemble of BEST_TEACHERS default networks (charclf.models.ensemble), trained on train and
  refitted on train + validation (charclf.training.refit), both kept. Then the student, one
  default network, learns the teachers' averaged probabilities as well as the labels
  (charclf.training.distill): its first run, on train, learns from the teachers trained on train
  (so its validation names stay unseen, and they choose its epoch, temperature and label sets);
  its refit, on train + validation, from the refitted teachers. The student is saved; it predicts
  as fast as any default network. How the recipe was chosen: docs/tuning.md."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from charclf.config import TrainConfig, defaults_for

# The tutorial's network: one-hot letters, case kept (embedding_dim 0 over the alphabet's 57 symbols),
# into an nn.RNN of 128 units in one direction; a linear layer on its last state, log-softmax and the
# NLL loss (together: cross-entropy on the logits); plain SGD at 0.005, one name per step, each drawn
# as the tutorial draws them (a label uniformly, then one of its names). 7 epochs of 14,394 training
# names (split seed 0 of the names dataset) are 100,758 steps: the tutorial's 100,000. Nothing else of
# charclf's: no clipping, dropout, weight decay, smoothing, averaging, spelling heads, next-letter
# task or refit. What it keeps of charclf: the split, and the epoch chosen on validation.
TUTORIAL_ARCH = "rnn"
TUTORIAL = {"hidden_size": 128, "num_layers": 1, "bidirectional": False, "embedding_dim": 0, "lowercase": False,
            "pooling": "last", "dropout": 0.0, "members": 1, "spelling_weight": 0.0,
            "epochs": 7, "batch_size": 1, "optimizer": "sgd", "lr": 0.005, "weight_decay": 0.0,
            "sampling": "by-label", "class_weighting": "none", "label_smoothing": 0.0, "clip_grad_norm": 0.0,
            "average_decay": 0.0, "next_letter_weight": 0.0, "refit": False}

# The teachers: this many default networks, trained side by side as one ensemble.
BEST_TEACHERS = 5
# The student: the default network and training, with these changes.
BEST_STUDENT = {"distill_weight": 0.9, "crossover": 1.0, "epochs": 24}


def best_configs(arch: str, seed: int, extra: dict | None = None) -> tuple[dict, TrainConfig, dict, TrainConfig]:
    """(model options, TrainConfig) of the teachers, then of the student, for a backbone and split
    seed; `extra`: the extra names' options (extra_names, extra_weight, ...), the same for both."""
    extra = extra or {}
    teacher_options, teacher_config = defaults_for(arch, seed=seed, members=BEST_TEACHERS, refit=True, **extra)
    student_options, student_config = defaults_for(arch, seed=seed, refit=True, **BEST_STUDENT, **extra)
    return teacher_options, teacher_config, student_options, student_config


def tutorial_configs(seed: int, epochs: int | None = None) -> tuple[dict, TrainConfig]:
    """(model options, TrainConfig) of the tutorial's network and training (TUTORIAL) for a split seed."""
    return defaults_for(TUTORIAL_ARCH, seed=seed, **{**TUTORIAL, "epochs": epochs or TUTORIAL["epochs"]})


def train_tutorial(data_dir: Path, out: Path, seed: int = 0, device="auto", progress: bool = True,
                   log: Callable[[str], None] | None = None, force: bool = False, epochs: int | None = None):
    """The 'tutorial' recipe (TUTORIAL above) on a dataset -> its TrainResult, saved at `out`."""
    from charclf.training.train import train

    model_options, config = tutorial_configs(seed, epochs)
    return train(data_dir, out, TUTORIAL_ARCH, model_options=model_options, config=config, device=device,
                 progress=progress, log=log, force=force, recipe={"name": "tutorial"})


def train_best(data_dir: Path, out: Path, arch: str = "gru", seed: int = 0, device="auto", progress: bool = True,
               log: Callable[[str], None] | None = None, force: bool = False, extra: dict | None = None):
    """The 'best' recipe (above) on a dataset -> the student's TrainResult, saved at `out`. The
    teachers live in a temporary folder and are deleted at the end. `extra`: the extra names'
    options (TrainConfig's extra_* fields), for the teachers and the student alike."""
    from charclf.training.distill import Teachers
    from charclf.training.train import check_destination, train

    log = log or (lambda line: None)
    out = Path(out)
    check_destination(out, Path(data_dir), force)  # now, not after the teachers' minutes of training
    teacher_options, teacher_config, student_options, student_config = best_configs(arch, seed, extra)
    with tempfile.TemporaryDirectory(prefix="charclf-teachers-") as folder:
        teachers = Teachers(first=Path(folder) / "first.pt", refit=Path(folder) / "teachers.pt")
        log(f"best, step 1 of 2: the teachers, an ensemble of {BEST_TEACHERS} networks")
        with restarts_on_interrupt(1, out):
            taught = train(data_dir, teachers.refit, arch, model_options=teacher_options, config=teacher_config,
                           device=device, progress=progress, log=log, keep_first=teachers.first)
        if "refit" not in taught.metrics:  # no refit was possible: both runs learn from the one ensemble
            teachers = Teachers(first=teachers.refit)
        log(f"best, step 2 of 2: the student, one network learning from them "
            f"(the teachers' test accuracy {taught.metrics['test']['accuracy']:.4f})")
        with restarts_on_interrupt(2, out):
            return train(data_dir, out, arch, model_options=student_options, config=student_config, device=device,
                         progress=progress, log=log, force=force, teachers=teachers,
                         recipe=recipe_record(taught.metrics))


@contextlib.contextmanager
def restarts_on_interrupt(step: int, out: Path) -> Iterator[None]:
    """Ctrl-C in a step: the recipe cannot resume (its teachers are temporary), so say so, and leave
    no training state beside `out` that would invite --resume."""
    from charclf.training.train import TrainingInterrupted, state_path

    try:
        yield
    except TrainingInterrupted:
        state_path(out).unlink(missing_ok=True)
        kept = f"; the student's best checkpoint so far is at {out}" if step == 2 and out.is_file() else ""
        raise TrainingInterrupted(f"interrupted in step {step} of 2 of --preset best{kept}; the recipe cannot be "
                                  "resumed: run it again to start over") from None


def recipe_record(teacher_metrics: dict) -> dict:
    """What the student's checkpoint records of its recipe and its teachers (for its card)."""
    return {"name": "best", "teachers": {"members": BEST_TEACHERS, "test": teacher_metrics["test"],
                                         "val": teacher_metrics["val"],
                                         "train_seconds": teacher_metrics["train_seconds"]}}
