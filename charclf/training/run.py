"""One training run's parts (Run): the batch source, the model and its DDP wrapper, the optimizer,
the one-cycle schedule, the loss (with a teacher's probabilities when distilling), the weight
average and the progress; one optimizer step, validation, the resumable state and the saves."""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from charclf.config import ModelConfig, TrainConfig
from charclf.errors import CheckpointError, TrainingDiverged
from charclf.files.card import charclf_version, utc_now
from charclf.files.checkpoint import Checkpoint, save_checkpoint
from charclf.models.build import build_model
from charclf.models.tasks import TrainingTasks
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.scoring import evaluate
from charclf.training import distributed
from charclf.training.averaging import WeightAverage
from charclf.training.distill import Teacher, Teachers, check_distilling, crossovers, distilled_loss
from charclf.training.loop import class_weights
from charclf.training.runstate import Progress, rng_states, set_rng_states


class Run:
    """One training run's parts: batch source, model (and its DDP wrapper), optimizer, schedule,
    loss, weight average and progress."""

    def __init__(self, source, data_dir: Path, model_config: ModelConfig, config: TrainConfig, out: Path,
                 dist: distributed.Distributed, teachers: Teachers | None = None):
        self.source, self.model_config, self.config, self.out, self.dist = source, model_config, config, out, dist
        self.device = dist.device
        check_distilling(teachers, config.distill_weight, model_config.members)
        # With config.distill_weight: the model whose probabilities it also learns (distill.py).
        self.teachers = teachers
        self.teacher = Teacher(teachers.first, source.labels, self.device) if teachers else None
        self.keep_first: Path | None = None  # with a refit: where to save the first run's network as well
        self.recipe: dict | None = None  # what a recipe records of itself in the metrics (recipes.py)
        torch.manual_seed(config.seed)  # initial weights and dropout masks
        self.model = build_model(model_config).to(self.device)
        # Every weight that trains: the model, and while training the next-letter layers with it.
        self.trained = TrainingTasks(self.model, config.next_letter_weight).to(self.device)
        # Gradients are clipped per network (an ensemble's member), as each would be if it trained alone.
        self.clip_groups = [list(t.parameters()) for t in self.trained.tasks]
        self.net = self.trained  # what the forward pass goes through: under torchrun, DDP averages the gradients
        if dist.enabled:
            with dist.collectives("sharing the initial weights"):
                # No buffer changes while training (the spelling heads' letter codes are constants): no
                # broadcast of them before every forward pass, so the gradients' all-reduce stays
                # the only collective of a step (and the only one a vanished peer can break).
                self.net = nn.parallel.DistributedDataParallel(self.trained, **no_buffer_sync())
        # Each rank steps once per batch of its own share: the schedule counts those steps.
        self.steps_per_epoch = math.ceil(source.n_batches(config.batch_size) / dist.world_size)
        self.optimizer, self.scheduler = stepping(self.trained.parameters(), config, self.steps_per_epoch)
        weights = class_weights(source.train_counts, config.class_weighting)
        self.loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(self.device),
                                           label_smoothing=config.label_smoothing)
        self.average = WeightAverage(self.model, config.average_decay) if config.average_decay else None
        self.progress = Progress()
        self.info = run_info(config, model_config, data_dir, source, self.device, dist.world_size)
        self.data_dir = data_dir

    @functools.cached_property
    def scripts(self) -> dict:
        """What the checkpoint records of the training names' scripts (read when first saved)."""
        return learn_scripts(self.data_dir, self.source, self.config.seed)

    @property
    def kept(self) -> nn.Module:
        """The weights validated and saved: the average when averaging, else the model itself."""
        return self.average.model if self.average else self.model

    def step(self, names: list[str], targets: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on a batch -> (summed label loss, names), summed over all ranks."""
        real = len(names)  # dataset names; distilling adds crossovers after them
        if self.teacher is not None and self.config.crossover:
            made, made_targets = crossovers(names, targets, self.config.crossover)
            names, targets = names + made, torch.cat([targets, made_targets])
        padded, lengths = self.model.index(names, DEFAULT_ALPHABET)  # (B, T), (B,)
        targets = targets.to(self.device)
        loss, label_loss = self.net(padded.to(self.device), lengths, targets,
                                    lambda logits: self.label_loss(logits, targets, names, real))
        # Summed over all ranks: the epoch's mean loss, and the same NaN verdict on every rank.
        loss_sum, total_sum, n = self.dist.all_reduce_sum(
            [label_loss.item() * real, loss.item() * real, real])
        if not math.isfinite(total_sum):
            loss_sum = float("nan")  # train_one_epoch stops the run
        else:
            self.optimizer.zero_grad(set_to_none=True)
            with self.dist.collectives("averaging gradients"):
                loss.backward()
            # Clip: a long name can send an RNN's gradient through the roof in one step.
            for group in self.clip_groups if self.config.clip_grad_norm else ():
                nn.utils.clip_grad_norm_(group, self.config.clip_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            if self.average:
                self.average.update(self.model)
        return loss_sum, n

    def label_loss(self, logits: torch.Tensor, targets: torch.Tensor, names: list[str], real: int) -> torch.Tensor:
        """The label loss of one network's (B, C) logits: against the labels, and with a teacher
        also against its probabilities (the first `real` rows are dataset names)."""
        if self.teacher is None:
            return self.loss_fn(logits, targets)
        teacher = self.teacher.log_probabilities(names)
        return distilled_loss(logits, teacher, targets, real, self.loss_fn, self.config.distill_weight)

    def validate(self, epoch: int, train_loss: float) -> dict[str, float]:
        """The epoch's history row: losses of the weights as stepped, scores of the kept weights (on
        validation, and on the off-distribution set when there is one; only validation chooses)."""
        names, targets = self.source.held["val"]
        kept = evaluate(self.kept, names, targets, self.source.labels, DEFAULT_ALPHABET, self.device)
        stepped = evaluate(self.model, names, targets, self.source.labels, DEFAULT_ALPHABET, self.device)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise TrainingDiverged("the model's weights are no longer finite")
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": stepped["loss"], "val_loss_kept": kept["loss"],
               "val_accuracy": kept["accuracy"], "val_macro_f1": kept["macro_f1"],
               "lr": self.scheduler.get_last_lr()[0], "seconds": self.progress.seconds}
        if "offdist" in self.source.held:  # extra names never trained on (charclf.data.extra): beside validation
            names, targets = self.source.held["offdist"]
            offdist = evaluate(self.kept, names, targets, self.source.labels, DEFAULT_ALPHABET, self.device)
            row.update(offdist_accuracy=offdist["accuracy"], offdist_macro_f1=offdist["macro_f1"])
        return row

    def state(self) -> dict[str, Any]:
        """Everything resume() needs, this rank's RNG state gathered from every rank."""
        rngs = self.dist.gather_objects(rng_states(self.device, self.dist.enabled))
        return {
            "epoch": self.progress.epoch, "model_config": asdict(self.model_config),
            "train_config": asdict(self.config), "alphabet": DEFAULT_ALPHABET, "data_dir": self.info["data_dir"],
            "data_fingerprint": self.source.fingerprint, "model": self.trained.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "average": self.average.state_dict() if self.average else None, "rng_by_rank": rngs,
            "history": self.progress.history, "best": self.progress.best,
            "best_weights": self.progress.best_weights, "seconds": self.progress.seconds,
            "world_size": self.dist.world_size,  # the schedule's steps per epoch depend on it
            "teachers": self.teachers.to_json() if self.teachers else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put the run back exactly where `state` left it (weights, optimizer, schedule, RNGs)."""
        try:
            self.trained.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.average:
                self.average.load_state_dict(state["average"])
            set_rng_states(state["rng_by_rank"][self.dist.rank], self.device, self.dist.enabled)
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"the training state beside {self.out} does not fit its run ({e})") from None
        self.progress = Progress(state["epoch"], state["history"], state["best"], state["best_weights"],
                                 state["seconds"])

    def save(self, metrics: dict[str, Any], calibration: dict[str, Any] | None = None,
             weights: dict[str, torch.Tensor] | None = None, path: Path | None = None) -> None:
        """Write `weights` (default: the best so far) as the checkpoint, or at `path` (rank 0 only)."""
        if self.dist.is_main:
            info = {**self.info, "saved_at": utc_now()}  # for the model card
            checkpoint = Checkpoint(self.model_config, DEFAULT_ALPHABET, self.source.labels, info, metrics,
                                    calibration or {}, self.scripts, state_dict=weights or self.progress.best_weights)
            save_checkpoint(path or self.out, checkpoint)


def stepping(parameters, config: TrainConfig, steps_per_epoch: int):
    """(optimizer, learning-rate schedule) as config.optimizer says: AdamW on a one-cycle schedule
    peaking at config.lr, or plain SGD (no momentum) at the constant rate config.lr."""
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=config.lr, weight_decay=config.weight_decay)
        return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                          total_steps=config.epochs * steps_per_epoch)


def no_buffer_sync() -> dict[str, bool]:
    """DistributedDataParallel's argument for "no buffer broadcast before every forward pass":
    forward_sync_buffers from torch 2.13 on (broadcast_buffers is deprecated there; both still
    sync the buffers once at the start, which constant buffers do not mind), else broadcast_buffers."""
    parameters = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers": False}


def learn_scripts(data_dir: Path, source, seed: int) -> dict:
    """P(script | label) from the raw training names, for the checkpoint (charclf.predict.evidence)."""
    from charclf.predict.evidence import count_training_scripts, learn

    train = zip(*source.held["train"]) if "train" in source.held else ()
    return learn(source.labels, count_training_scripts(data_dir, source.labels, train, seed, DEFAULT_ALPHABET))


def run_info(config: TrainConfig, model_config: ModelConfig, data_dir: Path, source, device, world: int) -> dict:
    """What the checkpoint records of how it was trained (its train_config)."""
    return {**asdict(config), "arch": model_config.arch, "data_dir": str(Path(data_dir).resolve()),
            "data_fingerprint": source.fingerprint, "split_sizes": source.sizes, "device": str(device),
            "processes": world, "torch": str(torch.__version__),  # TorchVersion is not a plain str
            "charclf": charclf_version()}
