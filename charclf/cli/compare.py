"""`charclf compare`: train several models (or the ladder's rungs) on the same split, on one or
several split seeds, and report them side by side."""

from __future__ import annotations

from pathlib import Path

import click

from charclf.cli.app import DEVICE_HELP, data_option, main, reports_errors, threads_option, use_threads
from charclf.cli.console import NORMAL, VERBOSE, run_log, say, show_progress, verbosity_options
from charclf.cli.params import MAX_EPOCHS, FilePath
from charclf.cli.train import TRAIN_DATA_DEFAULT, _settings_line
from charclf.config import ARCHS, MAX_SEED, MODELS, TrainConfig


@main.command()
@data_option(TRAIN_DATA_DEFAULT)
@click.option("--archs", default=None,
              help=f"Models to train, comma-separated: backbones and ngram (the baseline). "
                   f"[default: {','.join(MODELS)}; with --same-budget {','.join(ARCHS)}]")
@click.option("--ladder", is_flag=True,
              help="Train the ladder instead: the PyTorch tutorial's network (--preset tutorial), then one change "
                   "at a time up to charclf's default model.")
@click.option("--same-budget", is_flag=True,
              help="Train the backbones on equal terms: the default GRU's learning rate and clipping for all, "
                   "each one's hidden size the largest within the default GRU's parameters.")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), help="Epochs for every model. Default: each one's own.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=TrainConfig.seed, show_default=True)
@click.option("--seeds", help="Split seeds, comma-separated (e.g. 0,1,2): every model is trained on each, and the "
                              "table shows the mean and spread of its scores. Default: --seed.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@click.option("--out-dir", type=FilePath(file_okay=False, path_type=Path), default=Path("runs/compare"),
              show_default=True, help="Where the checkpoints, compare.json and compare.png go.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (stderr). Default: when stderr is a terminal, unless -q.")
@verbosity_options("Also print every setting each model trains with.")
@reports_errors
def compare(data, archs, ladder, same_budget, epochs, seed, seeds, device, threads, out_dir, progress, verbosity):
    """Train several models on the same split and compare them.

    Prints a table (test accuracy, macro-F1, parameters, training seconds) and draws their
    validation curves side by side in one PNG: see how the gated cells (LSTM, GRU) fare
    against the plain RNN on the same names, and all three against the n-gram baseline
    (a level line: it is fitted in one go). Below the table, each model's test accuracy by
    name length shows how it copes with short and long names (a plain RNN read in one
    direction and answering from its last state, --unidirectional --pooling last, is the
    textbook case for forgetting the start of long names).

    Each backbone trains with its own defaults (lstm and rnn change a few); --same-budget gives
    them the same ones and the same number of weights. With several --seeds, or --ladder, each
    model is trained once per split seed: the table shows the mean and standard deviation of
    its test scores, and the PNG each one's mean with its range over the seeds.

    \b
    Examples:
      charclf compare --archs rnn,gru --epochs 10
      charclf compare --same-budget --seeds 0,1,2
      charclf compare --ladder --seeds 0,1,2 --threads 1
    """

    from charclf.files.locations import resolve_data_dir
    from charclf.files.outputs import check_output
    from charclf.training import train as training
    from charclf.training.comparison import compare_models, compare_seeds

    chosen_seeds = _seeds(seeds, seed)
    entries = _entries(archs, ladder, same_budget)
    use_threads(threads)
    data_dir = resolve_data_dir(data)
    if same_budget:
        entries = _budgeted(entries, data_dir, chosen_seeds[0])
    for name, kind in (("compare.json", "text"), ("compare.png", "picture")):
        check_output(out_dir / name, kind, [data_dir], data_dir, "--out-dir")
    by_seed = ladder or len(chosen_seeds) > 1
    checkpoints = {(entry.name, seed_now): out_dir / (f"{entry.name}-seed{seed_now}.pt" if by_seed
                                                      else f"{entry.name}.pt")
                   for seed_now in chosen_seeds for entry in entries}
    for out in checkpoints.values():  # every checkpoint, before the first trains for minutes
        training.check_destination(out, data_dir, flag="--out-dir")
    results = _train_all(entries, chosen_seeds, checkpoints, data_dir, epochs, device, progress, verbosity)
    if by_seed:
        title = "From the tutorial to charclf's default" if ladder else "Backbones"
        lines = compare_seeds(entries, results, out_dir, f"{title}, split seeds {seeds or seed}")
    else:
        lines = compare_models({name: runs[0][1] for name, runs in results.items()}, data_dir, out_dir, device)
    for line in lines:
        click.echo(line)


def _train_all(entries: list, seeds: list[int], checkpoints: dict, data_dir: Path, epochs: int | None, device: str,
               progress: bool | None, verbosity) -> dict[str, list]:
    """Train every entry on every split seed, each to its checkpoint -> entry name -> [(seed, TrainResult,
    seconds)], saying each result as it ends."""
    import time

    from charclf.training import train as training

    results: dict[str, list] = {entry.name: [] for entry in entries}
    progress, log = show_progress(verbosity, progress), run_log(verbosity)
    total = len(entries) * len(seeds)
    for seed_now in seeds:  # every row on one seed before the next: a cut-short run has whole seeds
        for entry in entries:
            options, config = entry.configs(seed_now, epochs)
            say(verbosity, _settings_line({"arch": entry.arch, **options}, config), VERBOSE)
            started = time.perf_counter()
            result = training.train(data_dir, checkpoints[entry.name, seed_now], arch=entry.arch,
                                    model_options=options, config=config, device=device, progress=progress, log=log)
            results[entry.name].append((seed_now, result, time.perf_counter() - started))
            done, test = sum(map(len, results.values())), result.metrics["test"]
            say(verbosity, f"[{done}/{total}] {entry.name}, split seed {seed_now}: "
                           f"test accuracy {test['accuracy']:.4f}, "
                           f"macro-F1 {test['macro_f1']:.4f}, {time.perf_counter() - started:.0f} s", NORMAL)
    return results


def _seeds(seeds: str | None, seed: int) -> list[int]:
    """--seeds '0,1,2' -> [0, 1, 2] (distinct split seeds); none given: [--seed]."""
    if seeds is None:
        return [seed]
    try:
        chosen = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        chosen = []
    if not chosen or len(set(chosen)) < len(chosen) or not all(0 <= s <= MAX_SEED for s in chosen):
        raise click.BadParameter(f"give distinct whole numbers from 0 to {MAX_SEED}, comma-separated, got {seeds!r}",
                                 param_hint="--seeds")
    return chosen


def _entries(archs: str | None, ladder: bool, same_budget: bool) -> list:
    """The comparison's rows (charclf.training.ladder.Entry) that the options ask for (--same-budget:
    the backbones, their sizes set later by _budgeted)."""
    from charclf.training.ladder import Entry
    from charclf.training.ladder import ladder as rungs

    if ladder and (archs or same_budget):
        raise click.UsageError("--ladder trains its own rungs: drop --archs and --same-budget")
    if ladder:
        return rungs()
    allowed = ARCHS if same_budget else MODELS
    chosen = [a.strip() for a in (archs or ",".join(allowed)).split(",") if a.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen or len(set(chosen)) < len(chosen):
        raise click.BadParameter(f"choose distinct ones from {', '.join(allowed)}, got {archs!r}", param_hint="--archs")
    return [Entry(arch, arch) for arch in chosen]


def _budgeted(entries: list, data_dir: Path, seed: int) -> list:
    """--same-budget: the entries' backbones sized to the default GRU's parameters on this dataset's labels."""
    from charclf.data.batches import open_source
    from charclf.names.text import DEFAULT_ALPHABET
    from charclf.training.ladder import same_budget

    labels = open_source(data_dir, DEFAULT_ALPHABET, seed).labels
    return same_budget([entry.arch for entry in entries], len(DEFAULT_ALPHABET), len(labels))
