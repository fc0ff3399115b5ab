"""Training: the n-gram part fitted first (if the model has one), then batches of packed names for the
recurrent part, AdamW with a one-cycle schedule, the best epoch on validation accuracy (macro-F1
breaking ties) kept as the checkpoint, and a resumable state saved after every epoch."""

from __future__ import annotations

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

from charclf import distributed
from charclf.calibration import fit_temperature, scores
from charclf.checkpoint import Checkpoint, save_checkpoint
from charclf.files import atomic_write, ensure_writable, remove_stale_temps
from charclf.config import ModelConfig, TrainConfig, defaults_for
from charclf.data import index_batch, split_dataset, split_warnings
from charclf.errors import CharclfError, CheckpointError, DataError
from charclf.metrics import majority_baseline, report
from charclf.ngrams import letter_codes
from charclf.model import NameClassifier, batched_logits, count_parameters, pick_device
from charclf.stream import StreamDataset, open_dataset
from charclf.text import DEFAULT_ALPHABET

STATE_FORMAT = 1


class TrainingDiverged(CharclfError):
    """The loss or the outputs became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(CharclfError):
    """Ctrl-C: the best checkpoint so far is kept and the run can be resumed."""

    exit_code = 130  # the shell's convention for a process ended by SIGINT


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def class_weights(targets: list[int], n_classes: int, mode: str) -> torch.Tensor | None:
    """Weights proportional to count^-1 ('inverse') or count^-1/2 ('sqrt'), mean 1."""
    if mode == "none":
        return None
    counts = Counter(targets)
    power = 1.0 if mode == "inverse" else 0.5
    w = torch.tensor([max(counts.get(c, 0), 1) ** -power for c in range(n_classes)])
    return w * n_classes / w.sum()


def history_paths(checkpoint: Path) -> tuple[Path, Path]:
    """Where the metric history and its curves go: beside the checkpoint."""
    return checkpoint.with_suffix(".history.json"), checkpoint.with_suffix(".curves.png")


def state_path(checkpoint: Path) -> Path:
    """The resumable training state (last epoch, optimizer, RNG), beside the checkpoint."""
    return checkpoint.with_suffix(".state.pt")


def train(
    data_dir: Path,
    out: Path,
    arch: str = "gru",
    model_options: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on a folder of <Label>.txt files or a CSV/TSV file of name,label rows; keep the best
    model on validation accuracy (macro-F1 breaking ties) at `out`. Under torchrun, every process
    runs this and they train one model data-parallel (see charclf.distributed); only rank 0 writes
    files.

    `arch` brings its tuned defaults (config.ARCH_DEFAULTS); `model_options` entries override its
    model options, and `config`, when given, replaces its training config whole.
    """
    arch_options, arch_config = defaults_for(arch)
    model_options = {**arch_options, **(model_options or {})}
    config = config or arch_config
    if distributed.is_main_process():
        ensure_writable(Path(out))
    with distributed.session(device) as dist:
        # A streamed file's n-gram part is fitted on a sample of its training rows: keep one.
        held = ("train", "val", "test") if model_options.get("ngram_buckets") else ("val", "test")
        dataset = open_dataset(Path(data_dir), DEFAULT_ALPHABET, config.seed, held)
        model_config = ModelConfig(
            arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=len(dataset.labels), **model_options
        )
        trainer = Trainer(dataset, Path(data_dir), model_config, config, Path(out), dist.device, dist)
        return trainer.fit(progress=progress, log=log)


def resume(
    out: Path,
    data_dir: Path | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    state: dict[str, Any] | None = None,
) -> TrainResult:
    """Continue the run whose state was saved beside `out`, with its own configuration, on the
    same data (by default the folder it was trained on); ends as an uninterrupted run would.
    `state`: that state, when the caller has already read it (load_training_state)."""
    out = Path(out)
    state = state or load_training_state(out)
    if distributed.is_main_process():
        ensure_writable(out)
    data_dir = Path(data_dir or state["data_dir"])
    config = TrainConfig(**state["train_config"])
    with distributed.session(device) as dist:
        saved_world = state.get("world_size", 1)
        if saved_world != dist.world_size:
            raise CheckpointError(f"the saved run trained in {saved_world} process(es), this one has {dist.world_size}: "
                                  f"resume it with as many (torchrun --nproc_per_node, --nnodes)")
        dataset = open_dataset(data_dir, state["alphabet"], config.seed)
        if dataset.fingerprint != state["data_fingerprint"]:
            raise DataError(f"the dataset at {data_dir} differs from the one the saved run was trained on; cannot resume")
        trainer = Trainer(dataset, data_dir, ModelConfig(**state["model_config"]), config, out, dist.device, dist)
        trainer.restore(state)
        return trainer.fit(progress=progress, log=log)


def load_training_state(out: Path) -> dict[str, Any]:
    path = state_path(Path(out))
    if not path.is_file():
        raise CheckpointError(
            f"no training state to resume at {path} (the run finished, or never completed an epoch); "
            "train without --resume to start anew"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable training state: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a charclf training state of format {STATE_FORMAT}")
    return state


class Trainer:
    """One training run: model, optimizer, schedule, RNGs, history and the best epoch so far."""

    def __init__(self, dataset, data_dir: Path, model_config: ModelConfig, config: TrainConfig, out: Path,
                 device: str | torch.device, dist: distributed.Distributed | None = None):
        self.dataset, self.config, self.model_config, self.out = dataset, config, model_config, out
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.dist = dist or distributed.Distributed.single(self.device)
        if isinstance(dataset, StreamDataset):
            # Held in memory: the validation and test samples only. A Counter of label counts
            # stands in for the train targets: class_weights and majority_baseline only count them.
            self.splits = None
            self.sizes = {s: dataset.size(s) for s in ("train", "val", "test")}
            held = dict(dataset.held)
            self.ngram_train = held.pop("train", [])  # all training rows up to stream.HELD_MAX, else a sample
            self.x = {s: [name for name, _ in pairs] for s, pairs in held.items()}
            self.y = {s: [label for _, label in pairs] for s, pairs in held.items()}
            self.y["train"] = Counter(dict(enumerate(dataset.counts["train"])))
            batches_per_epoch = dataset.n_batches(config.batch_size)
        else:
            self.splits = split_dataset(dataset, seed=config.seed)
            self.sizes = {s: len(pairs) for s, pairs in self.splits.items()}
            self.x = {s: [name for name, _ in pairs] for s, pairs in self.splits.items()}
            self.y = {s: [label for _, label in pairs] for s, pairs in self.splits.items()}
            self.ngram_train = self.splits["train"]
            batches_per_epoch = math.ceil(len(self.x["train"]) / config.batch_size)

        torch.manual_seed(config.seed)  # initial weights and dropout masks
        self.generator = torch.Generator().manual_seed(config.seed)  # batch order
        self.model = NameClassifier(model_config).to(self.device)
        # What trains: the model's recurrent part, or its DDP wrapper (which averages the gradients
        # of all ranks in backward). Checkpoints always hold the plain model's state_dict.
        self.net = self.model
        if self.dist.enabled:
            with self.dist.collectives("sharing the initial weights"):
                # No buffer broadcast in every forward: the buffers (the n-gram part, its mix) are
                # set the same on every rank, and the n-gram table is large.
                self.net = nn.parallel.DistributedDataParallel(self.model, broadcast_buffers=False)
        # Each rank steps once per batch of its own share: the schedule counts those steps.
        self.steps_per_epoch = math.ceil(batches_per_epoch / self.dist.world_size)
        # The n-gram part (if any) is fitted on its own before the epochs and stays frozen.
        trained = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, total_steps=config.epochs * self.steps_per_epoch
        )
        weights = class_weights(self.y["train"], model_config.n_classes, config.class_weighting)
        self.loss_fn = nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(self.device), label_smoothing=config.label_smoothing
        )
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, float]] = []
        self.best: dict[str, Any] | None = None  # the history row of the best epoch
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0  # training time over all sessions of this run
        self.info = {
            **asdict(config),
            "arch": model_config.arch,
            "data_dir": str(data_dir.resolve()),
            "data_fingerprint": dataset.fingerprint,
            "split_sizes": self.sizes,
            "device": str(self.device),
            "processes": self.dist.world_size,
            "torch": str(torch.__version__),  # TorchVersion is not a plain str
        }

    def fit(self, progress: bool = True, log: Callable[[str], None] | None = None) -> TrainResult:
        log = log or (lambda line: tqdm.write(line, file=sys.stderr))
        if not self.dist.is_main:  # the other ranks train silently and write nothing
            log, progress = (lambda line: None), False
        first = self.epoch + 1
        if self.dist.is_main:
            for path in (self.out, state_path(self.out)):
                remove_stale_temps(path)  # left by a run killed while saving
        # Before its fit, the n-gram part has no rows in use, so no parameters to count yet.
        ngram_note = " + the n-gram part" if self.model.ngrams is not None and first == 1 else ""
        where = f"{self.dist.world_size} processes ({self.device.type})" if self.dist.enabled else self.device
        log(
            f"{'resuming at epoch ' + str(first) + ': ' if first > 1 else ''}training {self.model_config.arch} "
            f"({count_parameters(self.model):,} parameters{ngram_note}) on {where}: {len(self.dataset.labels)} labels, "
            f"{self.sizes['train']} train / {self.sizes['val']} val / {self.sizes['test']} test pairs"
        )
        for line in self._data_notes():
            log(line)
        if self.model.ngrams is not None and first == 1:
            started = time.perf_counter()
            self._fit_ngrams(log)
            self.seconds += time.perf_counter() - started
        epochs = tqdm(range(first, self.config.epochs + 1), desc="epochs", unit="epoch", disable=not progress,
                      file=sys.stderr, initial=first - 1, total=self.config.epochs)
        try:
            for epoch in epochs:
                started = time.perf_counter()
                train_loss = self._train_epoch(epoch, progress)
                row = self._validate(epoch, train_loss)
                self.seconds += time.perf_counter() - started
                row["seconds"] = self.seconds
                # Accuracy first; macro-F1 (the rare labels) breaks ties. Choosing on their sum kept
                # epochs that traded accuracy for macro-F1 (docs/tuning.md).
                improved = self.best is None or (row["val_accuracy"], row["val_macro_f1"]) > (
                    self.best["val_accuracy"], self.best["val_macro_f1"])
                if improved:
                    self.best = row
                    self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                self.epoch = epoch
                self.history.append(row)
                # State first: whenever the checkpoint exists, a state to resume from exists too.
                self._save_state()
                if improved:
                    self._save_checkpoint({"best_epoch": epoch, "val": {
                        "accuracy": row["val_accuracy"], "macro_f1": row["val_macro_f1"]}})
                epochs.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
                log(
                    f"epoch {epoch:>3}/{self.config.epochs}  loss {train_loss:.4f}  val loss {row['val_loss']:.4f}  "
                    f"val acc {row['val_accuracy']:.4f}  val macro-F1 {row['val_macro_f1']:.4f}"
                    + ("  *best" if improved else "")
                )
        except KeyboardInterrupt:
            epochs.close()
            if self.best is None:
                raise TrainingInterrupted(f"interrupted before the first epoch ended; nothing was saved at {self.out}") from None
            result = self._finish()
            raise TrainingInterrupted(
                f"interrupted in epoch {self.epoch + 1}: kept the best checkpoint so far (epoch {self.best['epoch']}, "
                f"test accuracy {result.metrics['test']['accuracy']:.4f}) at {self.out}; continue with --resume"
            ) from None
        self._check_replicas(log)
        result = self._finish()
        if self.dist.is_main:
            state_path(self.out).unlink(missing_ok=True)  # the run is complete: nothing left to resume
        return result

    def _data_notes(self) -> list[str]:
        """Warnings about the split, and for a CSV file what the scan found."""
        if self.splits is not None:
            return split_warnings(self.dataset.labels, self.splits)
        ds = self.dataset
        counts = ", ".join(f"{label} {sum(ds.counts[s][i] for s in ds.counts):,}" for i, label in enumerate(ds.labels))
        notes = [f"{ds.path}: rows per label: {counts}"]
        for i, label in enumerate(ds.labels):
            missing = [split for split in ("train", "val", "test") if ds.counts[split][i] == 0]
            if missing:
                consequence = "the model cannot learn it" if "train" in missing else "its scores there are 0"
                notes.append(f"warning: label {label} has no rows in the {' and '.join(missing)} split(s): {consequence}")
        if ds.skipped:
            notes.append(f"warning: {ds.skipped:,} row(s) of {ds.path} have no letters left after folding: skipped")
        if self.model.ngrams is not None and self.epoch == 0 and len(self.ngram_train) < self.sizes["train"]:
            notes.append(f"n-gram part: fitted on a random sample of {len(self.ngram_train):,} of the "
                         f"{self.sizes['train']:,} training rows")
        for split in ("val", "test"):
            if len(self.x[split]) < self.sizes[split]:
                notes.append(f"{split}: scored on a random sample of {len(self.x[split]):,} of its "
                             f"{self.sizes[split]:,} rows")
        return notes

    def _check_replicas(self, log: Callable[[str], None]) -> None:
        """Data parallel: every rank must end with the same weights; say so, or stop."""
        if not self.dist.enabled:
            return
        mine = (distributed.weights_digest(self.model.state_dict()), distributed.weights_digest(self.best_weights))
        digests = self.dist.gather_objects(mine)
        if len(set(digests)) != 1:
            raise distributed.DistributedError(f"the processes ended with different weights: {digests}")
        log(f"all {self.dist.world_size} processes hold identical weights (sha256: last epoch {mine[0]}, "
            f"checkpoint {mine[1]})")

    def _epoch_batches(self, epoch: int):
        """This rank's (names, (B,) targets) batches of one epoch, steps_per_epoch of them."""
        if isinstance(self.dataset, StreamDataset):
            for batch in self.dataset.train_batches(epoch, self.config.batch_size, self.config.bucket,
                                                    self.dist.rank, self.dist.world_size):
                yield [name for name, _ in batch], torch.tensor([label for _, label in batch])
            return
        x, y = self.x["train"], torch.tensor(self.y["train"])
        order = torch.randperm(len(x), generator=self.generator).tolist()
        size = self.config.batch_size
        if self.config.bucket:
            # Sort each run of 32 batches by name length, cut it into batches, shuffle the batches.
            chunks = []
            for start in range(0, len(order), 32 * size):
                run = sorted(order[start : start + 32 * size], key=lambda i: len(x[i]))
                chunks += [run[s : s + size] for s in range(0, len(run), size)]
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=self.generator).tolist()]
        else:
            chunks = [order[start : start + size] for start in range(0, len(order), size)]
        # Every rank drew the same chunks (same generator state): rank r takes every world_size-th,
        # the first ones repeated at the end so that all ranks take the same number of steps.
        world = self.dist.world_size
        chunks = [chunks[i % len(chunks)] for i in range(self.steps_per_epoch * world)][self.dist.rank :: world]
        for chunk in chunks:
            yield [x[i] for i in chunk], y[chunk]

    def _train_epoch(self, epoch: int, progress: bool) -> float:
        self.net.train()
        total = count = 0.0
        batches = tqdm(self._epoch_batches(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch}", leave=False,
                       disable=not progress, file=sys.stderr, unit="batch")
        for names, targets in batches:
            packed = self.model.pack(*index_batch(names, DEFAULT_ALPHABET)).to(self.device)
            loss = self.loss_fn(self.net(packed, recurrent_only=True), targets.to(self.device))
            # Summed over all ranks: the epoch's mean loss, and the same NaN verdict on every rank.
            loss_sum, n = self.dist.all_reduce_sum([loss.item() * len(names), len(names)])
            if not math.isfinite(loss_sum):
                self._diverged(epoch, f"the loss is {loss_sum / n}")
            self.optimizer.zero_grad(set_to_none=True)
            with self.dist.collectives("averaging gradients"):
                loss.backward()
            # Clip: a long name can send an RNN's gradient through the roof in one step.
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            total, count = total + loss_sum, count + n
            batches.set_postfix(loss=f"{loss.item():.3f}")
        return total / count

    def _fit_ngrams(self, log: Callable[[str], None]) -> None:
        """Fit the n-gram part as a logistic regression on the training names (TrainConfig.ngram_iterations)."""
        ngrams = self.model.ngrams
        names, targets = [name for name, _ in self.ngram_train], [label for _, label in self.ngram_train]
        padded, lengths = index_batch(names, DEFAULT_ALPHABET)
        weights = class_weights(targets, self.model_config.n_classes, self.config.class_weighting)
        iterations = ngrams.fit(padded.to(self.device), lengths.to(self.device),
                                torch.tensor(targets, device=self.device),
                                letter_codes(DEFAULT_ALPHABET).to(self.device), c=self.config.ngram_c,
                                max_iter=self.config.ngram_iterations, min_df=self.config.ngram_min_df,
                                class_weight=None if weights is None else weights.to(self.device))
        # Every rank fitted the same regression on the same names; rank 0's copy makes sure of it.
        self.dist.broadcast_([ngrams.weight.data, ngrams.bias.data, ngrams.idf, ngrams.codes], "sharing the n-gram part")
        self.ngram_val = self._part_logits("val", mix=1.0)
        val = report(self.y["val"], self.ngram_val.argmax(1).tolist(), self.dataset.labels)
        log(f"n-gram part: {int((ngrams.idf > 0).sum()):,} of {ngrams.n_buckets:,} buckets used, {iterations} "
            f"L-BFGS iterations, val acc {val['accuracy']:.4f}  val macro-F1 {val['macro_f1']:.4f}")

    def _part_logits(self, split: str, mix: float) -> torch.Tensor:
        """Log-probabilities of one part on a split: mix 0 = the recurrent part, 1 = the n-grams."""
        kept = self.model.mix.clone(), self.model.adjust.clone()
        self.model.mix.fill_(mix)
        self.model.adjust.zero_()
        try:
            return batched_logits(self.model, self.x[split], DEFAULT_ALPHABET, self.device)
        finally:
            self.model.mix.copy_(kept[0])
            self.model.adjust.copy_(kept[1])

    def _choose_combination(self, recurrent: torch.Tensor) -> tuple[float, float]:
        """(mix, tau): the n-gram weight in 0, 0.05, ..., 1 and the prior correction in 0, 0.25, ..., 1
        with the best validation accuracy, macro-F1 breaking ties."""
        targets = torch.tensor(self.y["val"])
        log_prior = self._log_prior()
        best = None
        for tau in (0.0, 0.25, 0.5, 0.75, 1.0):
            for mix in torch.linspace(0, 1, 21).tolist():
                predicted = ((1 - mix) * recurrent + mix * self.ngram_val - tau * log_prior).argmax(1)
                accuracy, macro_f1 = quick_scores(targets, predicted, self.model_config.n_classes)
                if best is None or (accuracy, macro_f1) > best[0]:
                    best = ((accuracy, macro_f1), mix, tau)
        return best[1], best[2]

    def _log_prior(self) -> torch.Tensor:
        """(n_classes,) log of each label's share of the training names (at least one name each)."""
        # y["train"]: a list of labels, or (streamed data) a Counter of them
        counts = torch.zeros(self.model_config.n_classes)
        for label, count in Counter(self.y["train"]).items():
            counts[label] = count
        return torch.log(counts.clamp_min(1) / counts.sum())

    def _validate(self, epoch: int, train_loss: float) -> dict[str, float]:
        chosen = {}
        if self.model.ngrams is not None:
            if not hasattr(self, "ngram_val"):  # resumed: the fitted part came with the state
                self.ngram_val = self._part_logits("val", mix=1.0)
            recurrent = self._part_logits("val", mix=0.0)
            mix, tau = self._choose_combination(recurrent)
            self.model.mix.fill_(mix)
            self.model.adjust.copy_(-tau * self._log_prior())
            alone = report(self.y["val"], recurrent.argmax(1).tolist(), self.dataset.labels)
            # The recurrent part's own scores, to compare backbones (compare's dashed curves).
            chosen = {"mix": mix, "tau": tau, "val_recurrent_accuracy": alone["accuracy"],
                      "val_recurrent_macro_f1": alone["macro_f1"]}
        logits = batched_logits(self.model, self.x["val"], DEFAULT_ALPHABET, self.device)
        if not torch.isfinite(logits).all() or not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self._diverged(epoch, "the model's outputs are no longer finite")
        val = report(self.y["val"], logits.argmax(1).tolist(), self.dataset.labels)
        return {
            **chosen,
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": nn.functional.cross_entropy(logits, torch.tensor(self.y["val"])).item(),
            "val_accuracy": val["accuracy"],
            "val_macro_f1": val["macro_f1"],
            "lr": self.scheduler.get_last_lr()[0],
        }

    def _diverged(self, epoch: int, what: str):
        kept = f"kept the last good checkpoint (epoch {self.best['epoch']}) at {self.out}" if self.best else \
            f"nothing was saved at {self.out}"
        raise TrainingDiverged(f"training diverged in epoch {epoch} ({what}); {kept}; try a smaller --lr")

    def _finish(self) -> TrainResult:
        """Score the kept (best) weights on the held-out splits and save them with those metrics."""
        model = NameClassifier(self.model_config).to(self.device)
        model.load_state_dict(self.best_weights)
        metrics: dict[str, Any] = {"best_epoch": self.best["epoch"], "epochs_run": self.epoch,
                                   "train_seconds": self.seconds, "parameters": count_parameters(model)}
        logits = {split: batched_logits(model, self.x[split], DEFAULT_ALPHABET, self.device) for split in ("val", "test")}
        for split, split_logits in logits.items():
            result = report(self.y[split], split_logits.argmax(1).tolist(), self.dataset.labels)
            metrics[split] = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], "n": result["n"]}
        if model.ngrams is not None:  # each part alone on test, what each brings (model: our own copy)
            for part, mix in (("recurrent_alone", 0.0), ("ngrams_alone", 1.0)):
                model.mix.fill_(mix)
                model.adjust.zero_()
                alone = report(self.y["test"], batched_logits(model, self.x["test"], DEFAULT_ALPHABET, self.device)
                               .argmax(1).tolist(), self.dataset.labels)
                metrics[part] = {"test": {"accuracy": alone["accuracy"], "macro_f1": alone["macro_f1"]}}
        metrics["test_majority_baseline"] = majority_baseline(self.y["train"], self.y["test"], self.dataset.labels)
        # Temperature scaling: one scalar fitted on validation, judged on test (argmax unchanged).
        temperature = fit_temperature(logits["val"], torch.tensor(self.y["val"]))
        calibration = {"temperature": temperature, "fit_on": "val", "n": len(self.y["val"])}
        test_targets = torch.tensor(self.y["test"])
        for when, t in (("before", 1.0), ("after", temperature)):
            test_scores = scores(torch.softmax(logits["test"] / t, dim=1), test_targets)
            calibration[f"test_{when}"] = {key: test_scores[key] for key in ("ece", "brier", "nll")}
        metrics["calibration"] = calibration
        self._save_checkpoint(metrics, calibration)
        self._write_history()
        return TrainResult(checkpoint=self.out, metrics=metrics, history=self.history)

    def _write_history(self) -> None:
        if self.dist.is_main:
            write_history(self.out, self.history)

    def _save_checkpoint(self, metrics: dict[str, Any], calibration: dict[str, Any] | None = None) -> None:
        if not self.dist.is_main:
            return
        save_checkpoint(self.out, Checkpoint(self.model_config, DEFAULT_ALPHABET, self.dataset.labels,
                                             self.best_weights, self.info, metrics, calibration or {}))

    def _save_state(self) -> None:
        # Each rank's own RNG states (its dropout masks drew from them, on batches of its own sizes):
        # collected from all ranks, so that a resumed rank continues its own stream.
        rngs = self.dist.gather_objects(self._rng_states())
        if not self.dist.is_main:
            return
        state = {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "model_config": asdict(self.model_config),
            "train_config": asdict(self.config),
            "alphabet": DEFAULT_ALPHABET,
            "data_dir": self.info["data_dir"],
            "data_fingerprint": self.dataset.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": rngs[0][0],
            "cuda_rng": rngs[0][1],
            "rng_by_rank": rngs if self.dist.enabled else [],
            "generator": self.generator.get_state(),
            "history": self.history,
            "best": self.best,
            "best_weights": self.best_weights,
            "seconds": self.seconds,
            "world_size": self.dist.world_size,  # the schedule's steps per epoch depend on it
        }
        try:
            atomic_write(state_path(self.out), lambda f: torch.save(state, f))
        except OSError as e:
            raise CheckpointError(f"cannot write {state_path(self.out)}: {e.strerror or e}") from None

    def _rng_states(self) -> tuple[torch.Tensor, Any]:
        """(CPU RNG state, CUDA RNG state(s): this rank's device under torchrun, else all; [] on CPU)."""
        if self.device.type != "cuda":
            return torch.get_rng_state(), []
        return torch.get_rng_state(), (torch.cuda.get_rng_state(self.device) if self.dist.enabled
                                       else torch.cuda.get_rng_state_all())

    def restore(self, state: dict[str, Any]) -> None:
        """Put the run back exactly where `state` left it (weights, optimizer, schedule, RNGs)."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch_rng, cuda_rng = (state.get("rng_by_rank") or [(state["torch_rng"], state["cuda_rng"])])[self.dist.rank]
            torch.set_rng_state(torch_rng)
            if cuda_rng and self.device.type == "cuda":
                if self.dist.enabled:
                    torch.cuda.set_rng_state(cuda_rng, self.device)
                else:
                    torch.cuda.set_rng_state_all(cuda_rng)
            self.generator.set_state(state["generator"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"the training state beside {self.out} does not fit its run ({e})") from None
        self.epoch, self.history, self.seconds = state["epoch"], state["history"], state["seconds"]
        self.best, self.best_weights = state["best"], state["best_weights"]


def quick_scores(targets: torch.Tensor, predicted: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """(accuracy, macro-F1 over all labels) as metrics.report computes them, from one bincount."""
    confusion = torch.bincount(targets * n_classes + predicted, minlength=n_classes * n_classes)
    confusion = confusion.view(n_classes, n_classes).double()  # [true, predicted]
    tp = confusion.diag()
    f1 = torch.where(tp > 0, 2 * tp / (confusion.sum(0) + confusion.sum(1)), torch.zeros_like(tp))
    return (tp.sum() / len(targets)).item(), f1.mean().item()


def write_history(checkpoint: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as JSON, and their loss/accuracy curves as a PNG, beside the checkpoint."""
    from charclf.plots import plot_history

    json_path, png_path = history_paths(checkpoint)
    atomic_write(json_path, lambda f: f.write(json.dumps(history, indent=2).encode()))
    plot_history(history, png_path)
