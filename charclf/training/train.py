"""Training: batches of packed names from a batch source (every member of an ensemble on its own
loss), AdamW with a one-cycle schedule, weight averaging, the best epoch on validation accuracy
(macro-F1 breaking ties) kept as the checkpoint with its calibration temperature, and a
resumable state saved after every epoch. Beside the run, its refit on train + validation
(charclf.training.refit) trains in a second process; its weights at the chosen epoch are saved at the
end. Under torchrun the same loop runs in every process around a DistributedDataParallel
wrapper. The n-gram baseline (--model ngram) is fitted in one go instead (fit_ngram)."""

from __future__ import annotations

import contextlib
import inspect
import functools
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from charclf.predict import conformal

from charclf.config import NGRAM, ModelConfig, TrainConfig, defaults_for, saved_model_config
from charclf.data.batches import open_source
from charclf.errors import CharclfError, CheckpointError, DataError
from charclf.errors import TrainingDiverged
from charclf.files.atomic import atomic_write, remove_stale_temps
from charclf.files.card import charclf_version, utc_now
from charclf.files.checkpoint import Checkpoint, save_checkpoint
from charclf.files.export import onnx_beside
from charclf.files.validation import check_model_size
from charclf.models.build import build_model
from charclf.models.model import count_parameters
from charclf.models.tasks import TrainingTasks
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.calibration import MIN_CALIBRATION_NAMES, fit_temperature, scores
from charclf.predict.scoring import evaluate
from charclf.report.metrics import majority_baseline
from charclf.training import distributed, refit
from charclf.training.averaging import WeightAverage
from charclf.training.distill import Teacher, Teachers, check_distilling, crossovers, distilled_loss
from charclf.training.loop import class_weights, train_one_epoch
from charclf.training.outputs import output_lock, prepare_output
from charclf.training.runstate import Progress, load_state, rng_states, save_state, set_rng_states, state_path

__all__ = ["TrainResult", "TrainingDiverged", "TrainingInterrupted", "train", "resume", "load_training_state",
           "history_paths", "state_path"]
load_training_state = load_state


class TrainingInterrupted(CharclfError):
    """Ctrl-C: the best checkpoint so far is kept and the run can be resumed."""

    exit_code = 130  # the shell's convention for a process ended by SIGINT


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def history_paths(checkpoint: Path) -> tuple[Path, Path]:
    """Where the metric history and its curves go: beside the checkpoint."""
    return checkpoint.with_suffix(".history.json"), checkpoint.with_suffix(".curves.png")


def _prepare(out: Path, data_dir: Path | None, force: bool) -> contextlib.AbstractContextManager:
    """Refuse an --out that is not ours to replace (rank 0 checks); then lock it for the run."""
    main = distributed.is_main_process()
    if main:
        prepare_output(out, data_dir, force, [*history_paths(out), state_path(out), onnx_beside(out)])
    return output_lock(out, enabled=main)


def train(data_dir: Path, out: Path, arch: str = "gru", model_options: dict[str, Any] | None = None,
          config: TrainConfig | None = None, device: str | torch.device = "auto", progress: bool = True,
          log: Callable[[str], None] | None = None, force: bool = False,
          teachers: Teachers | None = None, keep_first: Path | None = None, recipe: dict | None = None) -> TrainResult:
    """Train on a folder of <Label>.txt files or a CSV/TSV file of name,label rows; keep the best
    model on validation at `out`. Under torchrun, every process runs this and they train one model
    data-parallel (see charclf.training.distributed); only rank 0 writes files.

    `arch` ("gru", "lstm", "rnn", or "ngram" for the baseline) brings its defaults
    (config.defaults_for); `model_options` entries override its model options, and `config`,
    when given, replaces its training config whole. `force`: replace an `out` that is not a
    charclf checkpoint (never a device, a folder or a file of the dataset). `teachers`: models whose
    probabilities the network learns too, with config.distill_weight (charclf.training.distill).
    `keep_first`: with a refit, the network trained on train alone is saved there too. `recipe`:
    what the checkpoint records of the recipe this run is part of (charclf.training.recipes)."""
    arch_options, arch_config = defaults_for(arch)
    model_options = {**arch_options, **(model_options or {})}
    config = config or arch_config
    with _prepare(Path(out), Path(data_dir), force), distributed.session(device) as dist:
        # The n-gram baseline is fitted on the training names held in memory (a sample of a big file).
        held = ("train", "val", "test") if arch == NGRAM else ("val", "test")
        source = open_source(Path(data_dir), DEFAULT_ALPHABET, config.seed, held)
        model_config = ModelConfig(arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=len(source.labels),
                                   **model_options)
        check_model_size(model_config)
        if arch == NGRAM:
            return fit_ngram(source, Path(data_dir), model_config, config, Path(out), dist, log)
        run = Run(source, Path(data_dir), model_config, config, Path(out), dist, teachers)
        run.keep_first = keep_first
        run.recipe = recipe
        return fit(run, progress=progress, log=log)


def resume(out: Path, data_dir: Path | None = None, device: str | torch.device = "auto", progress: bool = True,
           log: Callable[[str], None] | None = None, state: dict[str, Any] | None = None,
           force: bool = False) -> TrainResult:
    """Continue the run whose state was saved beside `out`, with its own configuration, on the
    same data (by default the folder it was trained on); ends as an uninterrupted run would.
    `state`: that state, when the caller has already read it (load_training_state)."""
    out = Path(out)
    state = state or load_state(out)
    data_dir = Path(data_dir or state["data_dir"])
    try:
        config = TrainConfig(**{"refit": False, **state["train_config"]})  # runs saved before refitting had none
        model_config = saved_model_config(state["model_config"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"the training state beside {out} has a bad config ({e})") from None
    with _prepare(out, data_dir, force), distributed.session(device) as dist:
        if state["world_size"] != dist.world_size:
            raise CheckpointError(f"the saved run trained in {state['world_size']} process(es), this one has "
                                  f"{dist.world_size}: resume it with as many (torchrun --nproc_per_node, --nnodes)")
        source = open_source(data_dir, state["alphabet"], config.seed)
        if source.fingerprint != state["data_fingerprint"]:
            raise DataError(f"the dataset at {data_dir} differs from the one the saved run was trained on; cannot resume")
        run = Run(source, data_dir, model_config, config, out, dist, Teachers.from_json(state.get("teachers")))
        run.restore(state)
        return fit(run, progress=progress, log=log)


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
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, total_steps=config.epochs * self.steps_per_epoch)
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
            for group in self.clip_groups:
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
        """The epoch's history row: losses of the weights as stepped, scores of the kept weights."""
        names, targets = self.source.held["val"]
        kept = evaluate(self.kept, names, targets, self.source.labels, DEFAULT_ALPHABET, self.device)
        stepped = evaluate(self.model, names, targets, self.source.labels, DEFAULT_ALPHABET, self.device)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise TrainingDiverged("the model's weights are no longer finite")
        return {"epoch": epoch, "train_loss": train_loss, "val_loss": stepped["loss"], "val_loss_kept": kept["loss"],
                "val_accuracy": kept["accuracy"], "val_macro_f1": kept["macro_f1"],
                "lr": self.scheduler.get_last_lr()[0], "seconds": self.progress.seconds}

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


def fit(run: Run, progress: bool = True, log: Callable[[str], None] | None = None) -> TrainResult:
    """The epochs of `run` from where it stands; then the best weights scored, calibrated and saved."""
    log = _logger(log, run.dist)
    progress = progress and run.dist.is_main
    first, config = run.progress.epoch + 1, run.config
    if run.dist.is_main:
        for path in (run.out, state_path(run.out)):
            remove_stale_temps(path)  # left by a run killed while saving
    log(_start_line(run, first))
    for line in source_notes(run.source):
        log(line)
    epochs = tqdm(range(first, config.epochs + 1), desc="epochs", unit="epoch", disable=not progress,
                  file=sys.stderr, initial=first - 1, total=config.epochs)
    with refit.alongside(run, log) as refitting:  # None: no refit
        try:
            for epoch in epochs:
                row, improved = run_epoch(run, epoch, progress)
                epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
                # Validation: loss, accuracy and macro-F1 of the weights kept (the average when averaging).
                log(f"epoch {epoch:>3}/{config.epochs}  loss {row['train_loss']:.4f}  val loss "
                    f"{row['val_loss_kept']:.4f}  val acc {row['val_accuracy']:.4f}  val macro-F1 "
                    f"{row['val_macro_f1']:.4f}" + ("  *best" if improved else ""))
        except KeyboardInterrupt:
            epochs.close()
            raise _interrupted(run) from None
        _check_replicas(run, log)
        result = finish(run, refitting, log)
    if run.dist.is_main:
        state_path(run.out).unlink(missing_ok=True)  # the run is complete: nothing left to resume
    return result


def run_epoch(run: Run, epoch: int, progress: bool) -> tuple[dict[str, float], bool]:
    """Train one epoch, validate, save the state (and the checkpoint when it improved) ->
    (the epoch's history row, whether it is the best so far)."""
    started = time.perf_counter()
    run.net.train()
    config = run.config
    batches = run.source.epoch(epoch, config.batch_size, config.bucket, run.dist.rank, run.dist.world_size)
    try:
        train_loss = train_one_epoch(batches, run.step, run.steps_per_epoch, progress, f"epoch {epoch}")
        run.progress.seconds += time.perf_counter() - started
        row = run.validate(epoch, train_loss)
    except TrainingDiverged as e:
        raise _diverged(run, epoch, e) from None
    improved = run.progress.record(row, run.kept.state_dict())
    # State first: whenever the checkpoint exists, a state to resume from exists too.
    state = run.state()
    if run.dist.is_main:
        save_state(run.out, state)
    if improved:
        run.save({"best_epoch": epoch, "val": {"accuracy": row["val_accuracy"], "macro_f1": row["val_macro_f1"]}})
    return row, improved


def _logger(log: Callable[[str], None] | None, dist: distributed.Distributed) -> Callable[[str], None]:
    """Where a run's log lines go: `log`, else stderr above the progress bars; nowhere on ranks
    other than 0 (they train silently and write nothing)."""
    if not dist.is_main:
        return lambda line: None
    return log or (lambda line: tqdm.write(line, file=sys.stderr))


def source_notes(source) -> list[str]:
    """The batch source's notes, and a warning when its validation split is too small to trust."""
    n = source.sizes["val"]
    if n >= MIN_CALIBRATION_NAMES:
        return source.notes()
    return source.notes() + [
        f"warning: the validation split has only {n} name(s): too few to choose the best epoch reliably or to "
        f"fit a calibration temperature (at least {MIN_CALIBRATION_NAMES}); the probabilities stay the raw softmax (T = 1)"]


def _start_line(run: Run, first: int) -> str:
    where = f"{run.dist.world_size} processes ({run.device.type})" if run.dist.enabled else run.device
    sizes, c = run.source.sizes, run.model_config
    shape = f"{'bidirectional' if c.bidirectional else 'one direction'}, hidden {c.hidden_size} x {c.num_layers} layer(s)"
    shape += f", {c.members} members" if c.members > 1 else ""
    return (f"{'resuming at epoch ' + str(first) + ': ' if first > 1 else ''}training {c.arch} ({shape}, "
            f"{count_parameters(run.model):,} parameters) on {where}: {len(run.source.labels)} labels, "
            f"{sizes['train']} train / {sizes['val']} val / {sizes['test']} test pairs")


def _diverged(run: Run, epoch: int, error: TrainingDiverged) -> TrainingDiverged:
    best = run.progress.best
    kept = f"kept the last good checkpoint (epoch {best['epoch']}) at {run.out}" if best else \
        f"nothing was saved at {run.out}"
    return TrainingDiverged(f"training diverged in epoch {epoch} ({error}); {kept}; try a smaller --lr")


def _interrupted(run: Run) -> TrainingInterrupted:
    if run.progress.best is None:
        return TrainingInterrupted(f"interrupted before the first epoch ended; nothing was saved at {run.out}")
    result = finish(run)
    return TrainingInterrupted(
        f"interrupted in epoch {run.progress.epoch + 1}: kept the best checkpoint so far (epoch "
        f"{run.progress.best['epoch']}, test accuracy {result.metrics['test']['accuracy']:.4f}) at {run.out}; "
        "continue with --resume")


def _check_replicas(run: Run, log: Callable[[str], None]) -> None:
    """Data parallel: every rank must end with the same weights; say so, or stop."""
    if not run.dist.enabled:
        return
    mine = (distributed.weights_digest(run.model.state_dict()), distributed.weights_digest(run.progress.best_weights))
    digests = run.dist.gather_objects(mine)
    if len(set(digests)) != 1:
        raise distributed.DistributedError(f"the processes ended with different weights: {digests}")
    log(f"all {run.dist.world_size} processes hold identical weights (sha256: last epoch {mine[0]}, "
        f"checkpoint {mine[1]})")


def finish(run: Run, refitting: refit.Refit | None = None, log: Callable[[str], None] = lambda line: None) -> TrainResult:
    """Score the kept (best) weights on the held-out splits, fit the temperature, save. With a
    refit, its weights at the best epoch are saved instead, scored on test, with the first run's
    validation scores, temperature and label sets (charclf.training.refit)."""
    model = build_model(run.model_config).to(run.device)
    model.load_state_dict(run.progress.best_weights)
    best, weights, seconds, extra = run.progress.best["epoch"], None, run.progress.seconds, {}
    if refitting is not None:
        try:
            weights, extra["refit"] = refitting.weights(best)
        except refit.RefitFailed as e:
            log(f"warning: the refit on train + validation failed ({e}); saved the network trained on train alone")
    if weights is None:
        metrics, calibration = final_metrics(model, run.source, run.device)
    else:
        refitted = build_model(run.model_config).to(run.device)
        refitted.load_state_dict(weights)
        metrics, calibration = final_metrics(refitted, run.source, run.device, first=model)
        seconds += extra["refit"]["waited_seconds"]
        log(f"refit: kept its epoch {best} weights; test accuracy {metrics['test']['accuracy']:.4f} (trained on "
            f"train alone: {metrics['first_run']['test']['accuracy']:.4f})")
    metrics = {"best_epoch": best, "epochs_run": run.progress.epoch, "train_seconds": seconds, **extra, **metrics}
    if run.recipe:
        metrics["recipe"] = run.recipe
    run.save(metrics, calibration, weights)
    if run.keep_first is not None and weights is not None:  # the first run too, with its own scores
        first_metrics, first_calibration = final_metrics(model, run.source, run.device)
        run.save({"best_epoch": best, "epochs_run": run.progress.epoch, "train_seconds": run.progress.seconds,
                  **first_metrics}, first_calibration, path=run.keep_first)
    if run.dist.is_main:
        write_history(run.out, run.progress.history)
        write_onnx(run.out, log)
    return TrainResult(checkpoint=run.out, metrics=metrics, history=run.progress.history)


def final_metrics(model: nn.Module, source, device: torch.device, first: nn.Module | None = None) -> tuple[dict, dict]:
    """(metrics, calibration) of a trained model: val and test scores, the majority baseline, and
    one temperature fitted on validation, judged on test (the argmax is unchanged). `first`: the
    network trained on train alone, when `model` is its refit on train + validation: the
    validation scores, the temperature and the label sets are its (the refit has seen those names)."""
    metrics: dict[str, Any] = {"parameters": count_parameters(model)}
    results = {}
    for split in ("val", "test"):
        names, targets = source.held[split]
        scored = first if split == "val" and first is not None else model
        results[split] = evaluate(scored, names, targets, source.labels, DEFAULT_ALPHABET, device)
        metrics[split] = {key: results[split][key] for key in ("accuracy", "macro_f1", "n")}
    if first is not None:
        names, targets = source.held["test"]
        alone = evaluate(first, names, targets, source.labels, DEFAULT_ALPHABET, device)
        metrics["first_run"] = {"test": {key: alone[key] for key in ("accuracy", "macro_f1", "n")}}
    train_counts = Counter(dict(enumerate(source.train_counts)))
    metrics["test_majority_baseline"] = majority_baseline(train_counts, source.held["test"][1], source.labels)
    fitted = metrics["val"]["n"] >= MIN_CALIBRATION_NAMES  # else fit_temperature keeps T = 1
    temperature = fit_temperature(results["val"]["logits"], torch.tensor(source.held["val"][1]))
    calibration = {"temperature": temperature, "fit_on": "val", "n": metrics["val"]["n"],
                   "train_counts": list(source.train_counts),  # for --prior
                   "conformal": conformal.fit(torch.softmax(results["val"]["logits"] / temperature, dim=1),
                                              torch.tensor(source.held["val"][1]))}
    test_targets = torch.tensor(source.held["test"][1])
    calibration["fit_on"] = "val" if fitted else None  # None: too few validation names to fit on
    for when, t in (("before", 1.0), ("after", temperature)):
        test_scores = scores(torch.softmax(results["test"]["logits"] / t, dim=1), test_targets)
        calibration[f"test_{when}"] = {key: test_scores[key] for key in ("ece", "brier", "nll")}
    metrics["calibration"] = {key: value for key, value in calibration.items() if key != "conformal"}
    metrics["label_sets"] = conformal.report(torch.softmax(results["test"]["logits"] / temperature, dim=1),
                                             test_targets, calibration["conformal"])
    return metrics, calibration


def fit_ngram(source, data_dir: Path, model_config: ModelConfig, config: TrainConfig, out: Path,
              dist: distributed.Distributed, log: Callable[[str], None] | None = None) -> TrainResult:
    """The n-gram baseline: a logistic regression fitted by L-BFGS on the training names, then
    scored, calibrated and saved like a recurrent model (no epochs, no resumable state)."""
    log = _logger(log, dist)
    names, targets = source.held["train"]
    log(f"fitting the n-gram baseline (character 1-{model_config.ngram_max_n}-grams in "
        f"{model_config.ngram_buckets:,} buckets) on {len(names):,} training names"
        + (f", a random sample of {source.sizes['train']:,}" if len(names) < source.sizes["train"] else ""))
    for line in source_notes(source):
        log(line)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(dist.device)
    iterations = model.fit(names, targets, DEFAULT_ALPHABET, config,
                           class_weights(source.train_counts, config.class_weighting))
    seconds = time.perf_counter() - started
    metrics, calibration = final_metrics(model, source, dist.device)
    metrics = {"best_epoch": 1, "epochs_run": 1, "train_seconds": seconds, "lbfgs_iterations": iterations, **metrics}
    # One row: compare draws it as a level line beside the backbones' curves.
    history = [{"epoch": 1, "seconds": seconds, "val_accuracy": metrics["val"]["accuracy"],
                "val_macro_f1": metrics["val"]["macro_f1"]}]
    if dist.is_main:
        save_checkpoint(out, Checkpoint(model_config, DEFAULT_ALPHABET, source.labels,
                                        {**run_info(config, model_config, data_dir, source, dist.device,
                                                    dist.world_size), "saved_at": utc_now()}, metrics, calibration,
                                        learn_scripts(data_dir, source, config.seed), state_dict=model.state_dict()))
        write_history(out, history)
    return TrainResult(checkpoint=out, metrics=metrics, history=history)


def write_onnx(checkpoint: Path, log: Callable[[str], None]) -> None:
    """The checkpoint's ONNX export beside it (charclf.files.export.onnx_beside), so that prediction
    runs on ONNX Runtime, without torch; skipped with a warning where the onnx package is missing."""
    from charclf.extras import available, install_hint
    from charclf.files.export import export_file

    if not available("onnx"):
        log(f"warning: {install_hint('onnx')}; {onnx_beside(checkpoint).name} was not written, so prediction "
            "runs on torch")
        return
    export_file(checkpoint, onnx_beside(checkpoint))


def write_history(checkpoint: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as JSON, and their loss/accuracy curves as a PNG, beside the checkpoint."""
    from charclf.extras import available

    json_path, png_path = history_paths(checkpoint)
    try:
        atomic_write(json_path, lambda f: f.write(json.dumps(history, indent=2).encode()))
        if any("train_loss" in row for row in history) and available("matplotlib"):
            from charclf.report.plots import plot_history

            plot_history(history, png_path)
    except OSError as e:
        raise CheckpointError(f"saved {checkpoint}, but cannot write its history beside it: "
                              f"{e.strerror or e}") from None
