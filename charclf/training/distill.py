"""Distillation, a training aid: the network learns from a teacher's probabilities as well as from
the labels.

A teacher (usually an ensemble of networks: charclf.models.ensemble) knows more than the one label
of each name: how much a name looks Dutch as well as German. One network trained to match the
teacher's averaged probabilities costs one network when predicting. The label loss becomes

    (1 - distill_weight) x cross-entropy(labels) + distill_weight x KL(teacher || network)

Beside each batch's names the network also reads **crossovers**: name-like strings made of the
first letters of one training name and the last letters of another of the same label (Jon|es +
Harr|ison -> Jonison), crossover x the batch's names of them. The teacher says what each looks
like; its answer is the only target they get (their label is used for the next-letter task
alone). They show the network the teacher's judgement on spellings that the dataset lacks.

The teacher runs on every batch, in evaluation mode, without gradients. With five teachers and
crossovers 1x an epoch took about 4.5 times a default one's (the shipped model's student: 547 s
for 24 epochs, against 59 s for 12). On the names dataset the student came within 0.1 points of
its teachers' validation accuracy but kept only a small part of their lead on test
(docs/tuning.md, docs/accuracy-and-speed.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from charclf.names.text import DEFAULT_ALPHABET


@dataclass(frozen=True)
class Teachers:
    """Saved models to learn from: one for the run trained on train alone, one for its refit on train
    + validation (charclf.training.refit), so that the first run's validation names stay unseen."""

    first: Path
    refit: Path | None = None  # None: the refit learns from `first` too

    def to_json(self) -> dict[str, str]:
        return {"first": str(self.first), "refit": str(self.refit or self.first)}

    @classmethod
    def from_json(cls, saved: dict | None) -> "Teachers | None":
        return cls(Path(saved["first"]), Path(saved["refit"])) if saved else None


def check_distilling(teachers: Teachers | None, weight: float, members: int) -> None:
    """A teacher and distill_weight > 0 go together, and only a single network learns from one."""
    if (teachers is None) != (weight == 0):
        raise ValueError("distilling needs both a teacher and a distill_weight above 0")
    if teachers is not None and members != 1:
        raise ValueError("only a single network (members 1) learns from a teacher")


class Teacher:
    """A saved model whose probabilities a network learns (the .pt of charclf.files.checkpoint)."""

    def __init__(self, path: Path, labels: list[str], device: torch.device):
        from charclf.files.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(Path(path))
        if checkpoint.labels != labels:
            raise ValueError(f"the teacher {path} knows other labels than the dataset's")
        self.path = Path(path)
        self.model = checkpoint.build_model().to(device).eval().requires_grad_(False)
        self.device = device

    @torch.no_grad()
    def log_probabilities(self, names: list[str]) -> torch.Tensor:
        """B folded names -> (B, n_classes) log-probabilities (the model's raw softmax, T = 1)."""
        padded, lengths = self.model.index(names, DEFAULT_ALPHABET)
        return torch.log_softmax(self.model(padded.to(self.device), lengths), dim=1)


def crossovers(names: list[str], targets: torch.Tensor, share: float) -> tuple[list[str], torch.Tensor]:
    """About share x B strings made from the batch's names: a name's first letters, then another
    same-label name's last letters (each cut at a random place inside the name). Names whose
    label no other name of the batch has are skipped. -> (strings, (N,) their labels)."""
    by_label: dict[int, list[int]] = {}
    for row, label in enumerate(targets.tolist()):
        by_label.setdefault(label, []).append(row)
    made, labels = [], []
    wanted = int(share * len(names) + torch.rand(()).item())  # share = 0.5 gives half the batch, on average
    starts = torch.randint(len(names), (wanted,)).tolist()
    for row in starts:
        partners = by_label[int(targets[row])]
        if len(partners) < 2:
            continue
        other = partners[int(torch.randint(len(partners) - 1, ()))]
        other = partners[-1] if other == row else other
        head, tail = names[row], names[other]
        if len(head) < 2 or len(tail) < 2:
            continue
        cut_head = int(torch.randint(1, len(head), ()))
        cut_tail = int(torch.randint(1, len(tail), ()))
        made.append(head[:cut_head] + tail[cut_tail:])
        labels.append(int(targets[row]))
    return made, torch.tensor(labels, dtype=targets.dtype)


def distilled_loss(logits: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor, real: int,
                   label_loss: nn.Module, weight: float) -> torch.Tensor:
    """(B, C) network logits, (B, C) teacher log-probabilities and (B,) labels, whose first `real`
    rows are dataset names (the rest crossovers, which have the teacher's answer only) -> the loss:
    (1 - weight) x the label loss on the real names + weight x KL(teacher || network) on all."""
    log_probs = torch.log_softmax(logits, dim=1)
    kl = (teacher.exp() * (teacher - log_probs)).sum(dim=1).mean()
    return (1 - weight) * label_loss(logits[:real], targets[:real]) + weight * kl
