"""Training: batches of packed names from a batch source (every member of an ensemble on its own
loss), AdamW with a one-cycle schedule, weight averaging, the best epoch on validation accuracy
(macro-F1 breaking ties) kept as the checkpoint with its calibration temperature, and a
resumable state saved after every epoch (the run's parts: charclf.training.run; its end:
charclf.training.finish). Beside the run, its refit on train + validation
(charclf.training.refit) trains in a second process; its weights at the chosen epoch are saved at the
end. Under torchrun the same loop runs in every process around a DistributedDataParallel
wrapper. The n-gram baseline (--model ngram) is fitted in one go instead (fit_ngram)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from charclf.config import NGRAM, ModelConfig, TrainConfig, defaults_for, saved_model_config
from charclf.data.batches import open_source
from charclf.data.extra import ExtraSpec
from charclf.errors import CharclfError, CheckpointError, DataError, TrainingDiverged
from charclf.files.atomic import remove_stale_temps
from charclf.files.card import utc_now
from charclf.files.checkpoint import Checkpoint, save_checkpoint
from charclf.files.export import onnx_beside
from charclf.files.validation import check_model_size
from charclf.models.build import build_model
from charclf.models.model import count_parameters
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.calibration import MIN_CALIBRATION_NAMES
from charclf.training import distributed, refit
from charclf.training.distill import Teachers
from charclf.training.finish import TrainResult, final_metrics, finish, history_paths, write_history
from charclf.training.loop import class_weights, train_one_epoch
from charclf.training.outputs import output_lock, prepare_output
from charclf.training.run import Run, learn_scripts, run_info
from charclf.training.runstate import load_state, save_state, state_path

__all__ = ["TrainResult", "TrainingDiverged", "TrainingInterrupted", "train", "resume", "load_training_state",
           "history_paths", "state_path", "Run", "final_metrics"]
load_training_state = load_state


class TrainingInterrupted(CharclfError):
    """Ctrl-C: the best checkpoint so far is kept and the run can be resumed."""

    exit_code = 130  # the shell's convention for a process ended by SIGINT


def _prepare(out: Path, data_dir: Path | None, force: bool) -> contextlib.AbstractContextManager:
    """Refuse an --out that is not ours to replace (rank 0 checks); then lock it for the run."""
    main = distributed.is_main_process()
    if main:
        check_destination(out, data_dir, force)
    return output_lock(out, enabled=main)


def check_destination(out: Path, data_dir: Path | None, force: bool = False, flag: str = "--out") -> None:
    """Refuse an `out` (or a file a run writes beside it) that is not ours to replace, in one line,
    before any training: what `train` checks first, for a caller about to run several (`flag`: the
    option the refusal names)."""
    prepare_output(out, data_dir, force, [*history_paths(out), state_path(out), onnx_beside(out)], flag)


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
        source = open_source(Path(data_dir), DEFAULT_ALPHABET, config.seed, held, ExtraSpec.of(config))
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
        source = open_source(data_dir, state["alphabet"], config.seed, extra=ExtraSpec.of(config))
        if source.fingerprint != state["data_fingerprint"]:
            raise DataError(f"the dataset at {data_dir} differs from the one the saved run was trained on; "
                            "cannot resume")
        run = Run(source, data_dir, model_config, config, out, dist, Teachers.from_json(state.get("teachers")))
        run.restore(state)
        return fit(run, progress=progress, log=log)


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
                    f"{row['val_macro_f1']:.4f}" + _offdist_text(row) + ("  *best" if improved else ""))
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
    batches = run.source.epoch(epoch, config.batch_size, config.bucket, run.dist.rank, run.dist.world_size,
                                config.sampling)
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
        f"fit a calibration temperature (at least {MIN_CALIBRATION_NAMES}); the probabilities stay the raw "
        "softmax (T = 1)"]


def _offdist_text(row: dict) -> str:
    """An epoch's scores on the off-distribution set, when it has one (extra names: charclf.data.extra)."""
    if "offdist_accuracy" not in row:
        return ""
    return f"  off-distribution acc {row['offdist_accuracy']:.4f}  macro-F1 {row['offdist_macro_f1']:.4f}"


def _start_line(run: Run, first: int) -> str:
    where = f"{run.dist.world_size} processes ({run.device.type})" if run.dist.enabled else run.device
    sizes, c = run.source.sizes, run.model_config
    shape = (f"{'bidirectional' if c.bidirectional else 'one direction'}, hidden {c.hidden_size} x "
             f"{c.num_layers} layer(s)")
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


def fit_ngram(source, data_dir: Path, model_config: ModelConfig, config: TrainConfig, out: Path,
              dist: distributed.Distributed, log: Callable[[str], None] | None = None) -> TrainResult:
    """The n-gram baseline: a logistic regression fitted by L-BFGS on the training names, then
    scored, calibrated and saved like a recurrent model (no epochs, no resumable state)."""
    log = _logger(log, dist)
    names, targets = source.held["train"]
    extra = getattr(source, "extra", None)  # extra names (charclf.data.extra): each weighs extra_weight
    pool = extra.pool if extra is not None and config.extra_weight > 0 else []
    name_weights = [1.0] * len(names) + [config.extra_weight] * len(pool) if pool else None
    names, targets = names + [name for name, _ in pool], targets + [label for _, label in pool]
    log(f"fitting the n-gram baseline (character 1-{model_config.ngram_max_n}-grams in "
        f"{model_config.ngram_buckets:,} buckets) on {len(names):,} training names"
        + (f", a random sample of {source.sizes['train']:,}" if len(names) < source.sizes["train"] else ""))
    for line in source_notes(source):
        log(line)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(dist.device)
    iterations = model.fit(names, targets, DEFAULT_ALPHABET, config,
                           class_weights(source.train_counts, config.class_weighting), name_weights)
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


