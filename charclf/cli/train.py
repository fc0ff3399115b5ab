"""`charclf train`: fit a model, report its scores."""

from __future__ import annotations

import os
from pathlib import Path

import click

from charclf.cli.app import DEVICE_HELP, data_option, main, reports_errors, threads_option, use_threads
from charclf.cli.console import VERBOSE, run_log, say, show_progress, verbosity_options
from charclf.cli.params import MAX_BATCH, MAX_EPOCHS, FilePath, FiniteFloatRange
from charclf.config import (
    ARCHS,
    CLASS_WEIGHTINGS,
    MAX_EXTRA_CAP,
    MAX_EXTRA_RATIO,
    MAX_EXTRA_WEIGHT,
    MAX_SEED,
    MODEL_LIMITS,
    MODELS,
    NGRAM,
    POOLINGS,
    PRESETS,
    ModelConfig,
    TrainConfig,
    default_of,
    defaults_for,
)

TRAIN_DATA_DEFAULT = "$CHARCLF_DATA, else ./data/names"
EXTRA_OPTIONS = ("extra_names", "extra_weight", "extra_cap", "extra_ratio")  # with --preset too


def per_arch(field: str) -> str:
    """Help text naming each recurrent backbone's default for `field`."""
    values = {arch: default_of(arch, field) for arch in ARCHS}
    flags = {"bidirectional": ("bidirectional", "unidirectional"), "lowercase": ("lowercase", "case-sensitive"),
             "refit": ("refit", "no-refit")}
    shown = {arch: flags[field][0 if value else 1] if isinstance(value, bool)
             else f"{value:g}" if isinstance(value, (int, float)) else value for arch, value in values.items()}
    if len(set(shown.values())) == 1:  # the same for every backbone
        return f"[default: {next(iter(shown.values()))}]"
    return "[default: " + ", ".join(f"{arch} {value}" for arch, value in shown.items()) + "]"


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--model", "--arch", "arch", type=click.Choice(MODELS), default="gru", show_default=True,
              help="Recurrent backbone, or ngram: the classical baseline (a logistic regression over "
                   "character 1-5-grams, no network).")
@click.option("--hidden-size", type=click.IntRange(1, MODEL_LIMITS["hidden_size"]), help=per_arch("hidden_size"))
@click.option("--num-layers", type=click.IntRange(1, MODEL_LIMITS["num_layers"]), help=per_arch("num_layers"))
@click.option("--bidirectional/--unidirectional", default=None, help=per_arch("bidirectional"))
@click.option("--embedding-dim", type=click.IntRange(0, MODEL_LIMITS["embedding_dim"]),
              help="Letter embedding width (0: one-hot letters straight into the RNN). " + per_arch("embedding_dim"))
@click.option("--members", type=click.IntRange(1, MODEL_LIMITS["members"]),
              help="Train this many networks side by side and average their probabilities: more accurate, "
                   "and as many times slower to train and to predict. " + per_arch("members"))
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True), help=per_arch("dropout"))
@click.option("--pooling", type=click.Choice(POOLINGS),
              help="Name vector: the last states, the max over letters, or the mean and the max. "
                   + per_arch("pooling"))
@click.option("--lowercase/--case-sensitive", default=None,
              help="Read letters lower-cased (Jones and JONES alike). " + per_arch("lowercase"))
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), help=per_arch("epochs"))
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), help=per_arch("batch_size"))
@click.option("--lr", type=FiniteFloatRange(0, 100, min_open=True),
              help="Peak learning rate of the one-cycle schedule. " + per_arch("lr"))
@click.option("--weight-decay", type=FiniteFloatRange(0, 100), help=per_arch("weight_decay"))
@click.option("--class-weighting", type=click.Choice(list(CLASS_WEIGHTINGS)),
              help="Weigh rare labels more in the loss: (names / names of the label) to the power 1/4, "
                   "1/2 or 1. " + per_arch("class_weighting"))
@click.option("--label-smoothing", type=FiniteFloatRange(0, 1, max_open=True), help=per_arch("label_smoothing"))
@click.option("--average-decay", type=FiniteFloatRange(0, 1, max_open=True),
              help="Keep a moving average of the weights with this decay per step (0: the weights as "
                   "trained). " + per_arch("average_decay"))
@click.option("--next-letter-weight", type=FiniteFloatRange(0, 1000),
              help="Also learn to predict each next (and previous) letter, with this weight in the loss "
                   "(0: no): through the spelling heads, else through two layers the saved model drops. "
                   + per_arch("next_letter_weight"))
@click.option("--refit/--no-refit", default=None,
              help="While training on the training names (which choose the epoch, the temperature and the "
                   "label sets on validation), train the same network on train + validation in a second "
                   "process, and save that one at the chosen epoch: more accurate, the threads shared between "
                   "the two. " + per_arch("refit"))
@click.option("--spelling-weight", type=FiniteFloatRange(0, 1000),
              help="Spelling heads: each language's log-probability of the name's letters, read off the "
                   "network's own states, times this weight, is added to the answer (0: none). "
                   + per_arch("spelling_weight"))
@click.option("--spelling-rank", type=click.IntRange(1, MODEL_LIMITS["spelling_rank"]),
              help="Width the spelling heads read each letter's states through. " + per_arch("spelling_rank"))
@click.option("--ngram-buckets", type=click.IntRange(1, MODEL_LIMITS["ngram_buckets"]),
              help=f"--model ngram: hash buckets of its n-grams. [default: {ModelConfig.ngram_buckets}]")
@click.option("--ngram-c", type=FiniteFloatRange(0, 1e9, min_open=True),
              help=f"--model ngram: inverse L2 strength of its logistic regression. [default: {TrainConfig.ngram_c:g}]")
@click.option("--extra-names", metavar="mimesis|DIR",
              help="Also learn from these names, off by default: mimesis (the public surname lists of the "
                   "mimesis package: charclf's names extra) or a folder of <Label>.txt files. None of the "
                   "validation and test names are taken; a part of them, never trained on, is scored as the "
                   "off-distribution set beside validation and test.")
@click.option("--extra-weight", type=FiniteFloatRange(0, MAX_EXTRA_WEIGHT),
              help=f"How much an extra name weighs against a dataset name. [default: {TrainConfig.extra_weight:g}]")
@click.option("--extra-cap", type=click.IntRange(0, MAX_EXTRA_CAP),
              help=f"Most extra names per label (0: all). [default: {TrainConfig.extra_cap}]")
@click.option("--extra-ratio", type=FiniteFloatRange(0, MAX_EXTRA_RATIO),
              help="Most extra names per label, as a multiple of the label's training names (0: no limit). "
                   f"[default: {TrainConfig.extra_ratio:g}]")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=TrainConfig.seed, show_default=True,
              help="Seeds the split, the initial weights and the batch order.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@click.option("--out", type=FilePath(dir_okay=False, path_type=Path),
              help="Checkpoint to write. Default: $CHARCLF_HOME/model.pt (~/.local/share/charclf/model.pt), "
                   "the model evaluate, confusion and predict use without --checkpoint.")
@click.option("--preset", type=click.Choice(PRESETS), default="default", show_default=True,
              help="default: one run with the options given. best: the model charclf ships, about 15 minutes "
                   "on 2 cores: an ensemble of networks trained first, then one network learning from it. "
                   "tutorial: the PyTorch tutorial's network (one-hot letters, a 128-unit nn.RNN, a linear "
                   "layer on its last state), trained its way: plain SGD at 0.005, one name per step. No "
                   "other model or training option with best or tutorial.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run saved beside --out, with its own settings.")
@click.option("--force", is_flag=True,
              help="Replace an existing --out that is not a charclf checkpoint (never a device, a folder or a "
                   "file of the dataset).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (stderr). Default: when stderr is a terminal, unless -q.")
@click.pass_context
@verbosity_options("Also print every setting the run uses (model and training options).")
@reports_errors
def train(ctx, data, arch, seed, device, threads, out, preset, resume, force, progress, verbosity, **options):
    """Train a classifier on a folder of <Label>.txt files or a CSV/TSV file of names.

    The default model is a bidirectional GRU over letter embeddings, its outputs pooled over
    all letters (mean and max), then a linear layer, plus spelling heads on the same states:
    each language's log-probability of the name's letters, weighted, joins the answer. Nothing
    else is inside it. While training it also learns to predict each next letter (through the
    spelling heads), and the weights kept are a moving average over the training steps. lstm
    and rnn change a few of its settings; options given here win. --model ngram trains the
    classical baseline instead: a logistic regression over character 1-5-grams, no network.

    A folder's names are folded to ASCII, deduplicated and split 80/10/10 on unique names (no name
    text in two splits). The checkpoint with the best validation accuracy (macro-F1 breaking
    ties) is kept at --out, with its metric history (.history.json) and curves (.curves.png)
    beside it. Meanwhile a second process trains the same network on train + validation
    (--refit); at the end its weights at that epoch are saved, with the first run's validation
    scores and temperature (--no-refit: the first run's weights). After every epoch the run's
    state (.state.pt) is saved too: an interrupted run
    (Ctrl-C, a kill, a crash) continues with --resume and ends as if it had never stopped.

    A CSV/TSV file (name,label rows) is streamed: each name's split comes from a hash of
    the name, and memory stays flat however large the file. Started by torchrun, the
    processes train one model data-parallel; rank 0 writes the files.

    \b
    Examples:
      charclf train --model lstm --epochs 15 --out runs/lstm.pt
      charclf train --model ngram --out runs/ngram.pt
      charclf train --out runs/lstm.pt --resume
      charclf train --data names.csv --out runs/big.pt --threads 2
      torchrun --nproc_per_node 4 -m charclf train --out runs/ddp.pt
    """
    from charclf.files.locations import default_checkpoint, resolve_data_dir
    from charclf.training import train as training
    from charclf.training.distributed import is_main_process

    use_threads(threads)
    out = out or default_checkpoint()
    if options["extra_names"] not in (None, "", "mimesis"):  # a folder: found again by --resume and the refit
        options["extra_names"] = str(Path(options["extra_names"]).resolve())
    progress, log = show_progress(verbosity, progress), run_log(verbosity)
    if preset != "default":
        extra = {key: options.pop(key) for key in EXTRA_OPTIONS}
        _check_preset(ctx, preset, arch, resume, options)
        if preset == "tutorial" and any(value is not None for value in extra.values()):
            raise click.UsageError("--preset tutorial trains on the tutorial's names only: drop --extra-names")
        result = _train_preset(preset, resolve_data_dir(data), out, arch, seed, device, progress, log, force, extra)
        arch = "rnn" if preset == "tutorial" else arch
    elif resume:
        arch, result = _resume(ctx, data, out, device, progress, log, force, verbosity)
    else:
        if arch == "ngram" and options.get("members") not in (None, 1):
            raise click.UsageError("--members: the n-gram baseline is one model (use it with gru, lstm or rnn)")
        model_options, config = defaults_for(arch, seed=seed, **options)
        say(verbosity, _settings_line({"arch": arch, **model_options}, config), VERBOSE)
        result = training.train(resolve_data_dir(data), out, arch=arch, model_options=model_options, config=config,
                                device=device, progress=progress, log=log, force=force)
    if is_main_process():  # rank 0 reports for all
        _report_trained(arch, out, result)


def _resume(ctx: click.Context, data, out: Path, device: str, progress: bool, log, force: bool, verbosity):
    """--resume: the interrupted run's state, checked against the options given now -> (arch, TrainResult)."""
    from charclf.files.locations import resolve_data_dir
    from charclf.training import train as training

    state = training.load_training_state(out)
    _check_resume_options(ctx, {**state["model_config"], **state["train_config"]})
    data_dir = resolve_data_dir(data, fallback=state["data_dir"])
    say(verbosity, _settings_line(state["model_config"], state["train_config"]), VERBOSE)
    result = training.resume(out, data_dir=data_dir, device=device, progress=progress, state=state, log=log,
                             force=force)
    return state["model_config"]["arch"], result


def _train_preset(preset: str, data_dir: Path, out: Path, arch: str, seed: int, device: str, progress: bool, log,
                  force: bool, extra: dict):
    """--preset best or tutorial: a recipe (charclf.training.recipes) -> its TrainResult; best takes
    the extra names' options given."""
    from charclf.training.recipes import train_best, train_tutorial

    if preset == "tutorial":
        return train_tutorial(data_dir, out, seed=seed, device=device, progress=progress, log=log, force=force)
    return train_best(data_dir, out, arch=arch, seed=seed, device=device, progress=progress, log=log, force=force,
                      extra={key: value for key, value in extra.items() if value is not None})


def _check_preset(ctx: click.Context, preset: str, arch: str, resume: bool, options: dict) -> None:
    """--preset best chooses every option but the backbone itself, and runs from the start;
    --preset tutorial chooses the backbone too (the tutorial's nn.RNN)."""
    from click.core import ParameterSource

    if preset == "tutorial" and ctx.get_parameter_source("arch") != ParameterSource.DEFAULT and arch != "rnn":
        raise click.UsageError("--preset tutorial trains the tutorial's plain RNN: drop --model "
                               "(charclf compare --ladder trains it with a GRU too)")
    if arch == NGRAM:
        raise click.UsageError(f"--preset {preset} trains networks: use it with gru, lstm or rnn")
    if resume:
        raise click.UsageError(f"--preset {preset} cannot --resume: run it again from the start")
    # best's temporary teachers live in one process's folder.
    if preset == "best" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise click.UsageError(f"--preset {preset} runs in one process: start it without torchrun")
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise click.UsageError(f"--preset {preset} sets the model and training options itself: drop "
                               f"--{given[0].replace('_', '-')} (only the --extra-* options go with --preset best)")


def _report_trained(arch: str, out: Path, result) -> None:
    """What a finished run prints: where the model went, its scores, its history files."""
    from charclf.training.train import history_paths

    m = result.metrics
    base = m["test_majority_baseline"]
    click.echo(f"saved {arch} model to {out} (best epoch {m['best_epoch']} of {m['epochs_run']}, "
               f"{m['train_seconds']:.1f} s of training, {m['parameters']:,} parameters)")
    refitted = "refit" in m  # validation scores are then the first run's (charclf.training.refit)
    click.echo(f"validation: accuracy {m['val']['accuracy']:.4f}  macro-F1 {m['val']['macro_f1']:.4f}"
               + ("  (the network trained on train alone, which chose the epoch)" if refitted else ""))
    click.echo(f"test:       accuracy {m['test']['accuracy']:.4f}  macro-F1 {m['test']['macro_f1']:.4f}  "
               f"(always-{base['label']} baseline: accuracy {base['accuracy']:.4f})")
    if refitted:
        alone = m["first_run"]["test"]
        click.echo(f"refit:      trained on train + validation ({m['refit']['pairs']} pairs); trained on train "
                   f"alone, test accuracy {alone['accuracy']:.4f}  macro-F1 {alone['macro_f1']:.4f}")
    if "offdist" in m:
        o = m["offdist"]
        click.echo(f"off-distribution: accuracy {o['accuracy']:.4f}  macro-F1 {o['macro_f1']:.4f}  ({o['n']} extra "
                   "names never trained on)")
    teachers = m.get("recipe", {}).get("teachers")
    if teachers:  # a student (--preset best): what it learnt from
        click.echo(f"teachers:   an ensemble of {teachers['members']} networks, test accuracy "
                   f"{teachers['test']['accuracy']:.4f}  macro-F1 {teachers['test']['macro_f1']:.4f}; this one "
                   f"network learnt from their probabilities")
    history, curves = history_paths(result.checkpoint)
    click.echo(f"history: {history}" + (f"  curves: {curves}" if arch != NGRAM and curves.is_file() else ""))
    click.echo(_which_model_answers(out))


def _which_model_answers(out: Path) -> str:
    """The line that says which model `charclf predict` now answers with, and how to change that."""
    from charclf.files.locations import default_checkpoint

    if Path(out).resolve() == default_checkpoint().resolve():
        return (f"predict, explain and serve now answer with this model; to answer with the shipped one "
                f"again, remove it (rm {out}) or pass --checkpoint")
    return f"predict with it: charclf predict --checkpoint {out} NAME (without --checkpoint: the default model)"


def _settings_line(model_options: dict, config) -> str:
    """-v: every option a run trains with, in one line."""
    from dataclasses import asdict, is_dataclass

    settings = {**model_options, **(asdict(config) if is_dataclass(config) else config)}
    return "settings: " + ", ".join(f"{key}={value}" for key, value in settings.items())


def _check_resume_options(ctx: click.Context, saved: dict) -> None:
    """--resume continues a run as it was started: an option given now must agree with it."""
    from click.core import ParameterSource

    for name, value in ctx.params.items():
        given = ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if given and name in saved and value != saved[name]:
            option = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"--resume continues the saved run with its own settings: {option} {value} differs from its "
                f"{saved[name]}"
            )


