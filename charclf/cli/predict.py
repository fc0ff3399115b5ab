"""`charclf predict`: names from arguments, a file or stdin, or a table (--csv), answered with
the torch classifier or, for a .onnx file, ONNX Runtime. Registered on the `charclf` group (charclf.cli.app.main)."""

from __future__ import annotations

import functools
import gc
import sys
import time
from pathlib import Path

import click

from charclf.cli.app import (
    DEVICE_HELP,
    backend_option,
    check_out,
    checkpoint_option,
    load_model,
    main,
    min_confidence_option,
    precision_option,
    prior_option,
    reports_errors,
    threads_option,
)
from charclf.cli.console import NORMAL, VERBOSE, VERBOSITY, say, show_progress, verbosity_options
from charclf.cli.params import MAX_BATCH, MAX_K, PREDICT_SPELLING, FilePath, PredictFloat, PredictInt
from charclf.printable import printable

LINES_READ = "charclf.lines_read"  # click context meta: lines _read_lines has read (predict --file)


def table_options(command):
    """predict's --csv options, -q and -v, handled around it: with --csv, _predict_table answers
    the table; else predict runs as it is (its --file progress bar and -v summary by _read_lines)."""

    @functools.wraps(command)
    def wrapper(*args, verbosity, table, columns, out, delimiter, encoding_errors, all_probs, excel_safe, **kwargs):
        options = {"columns": columns, "out": out, "delimiter": delimiter, "encoding_errors": encoding_errors,
                   "all_probs": all_probs, "excel_safe": excel_safe}
        if table is not None:
            return _predict_table(table, verbosity=verbosity, **options, **kwargs)
        _refuse_table_options(kwargs.get("file"), options)
        meta = click.get_current_context().meta
        meta[VERBOSITY], meta[LINES_READ] = verbosity, 0
        started = time.perf_counter()
        try:
            return command(*args, **kwargs)
        finally:
            seconds, lines = time.perf_counter() - started, meta[LINES_READ]
            if lines:
                say(verbosity, f"predicted {lines:,} lines in {seconds:.1f} s ({lines / max(seconds, 1e-9):,.0f} "
                               "names/s), start-up included", VERBOSE)

    table = [
        click.option("--csv", "table", type=FilePath(dir_okay=False, allow_dash=True), metavar="TABLE",
                     help="Read a CSV/TSV table with a header row ('-' for stdin) and write it back with the "
                          "answers for --column appended (see above)."),
        click.option("--column", "columns", multiple=True, metavar="NAME",
                     help="--csv: the column of names. Repeat it to classify several columns, each on its own. "
                          "Default: a one-column table's only column."),
        click.option("--out", type=FilePath(dir_okay=False, path_type=Path),
                     help="--csv: write the table here (default: stdout); an existing file is replaced only "
                          "when the run succeeds."),
        click.option("--delimiter", metavar="CHAR",
                     help="--csv: the cell delimiter (',', ';', '|', 'tab' or '\\t'). Default: the extension's "
                          "(.csv comma, .tsv tab), else sniffed from the first lines. The output uses the same."),
        click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict",
                     show_default=True,
                     help="--csv: bytes that are not UTF-8 stop the run naming the line (strict), or are read "
                          "as U+FFFD (replace)."),
        click.option("--all-probs", is_flag=True, help="--csv: add a probability_<Label> column for every label."),
        click.option("--excel-safe", is_flag=True,
                     help="--csv: prefix the table's own cells that begin with = + - @ TAB or CR with an apostrophe, "
                          "so that a spreadsheet never reads them as formulas (the cells charclf writes always are). "
                          "Default: the table's cells are copied byte for byte."),
    ]
    for option in reversed(table):
        wrapper = option(wrapper)
    return verbosity_options("With --file: say at the end how many names were read and how fast; with --csv, "
                             "how many rows were written.")(wrapper)


def _refuse_table_options(file, table: dict) -> None:
    """--file FILE.csv, or a --csv option without --csv: say what to use instead (exit 2)."""
    from charclf.data.delimited import DELIMITERS

    if file and Path(file).suffix.lower() in DELIMITERS:
        raise click.UsageError(f"{file} looks like a table: use --csv {file} --column NAME "
                               "(--file reads one name per line)")
    given = [option for option, value in (("--column", table["columns"]), ("--out", table["out"]),
             ("--delimiter", table["delimiter"]), ("--all-probs", table["all_probs"]),
             ("--excel-safe", table["excel_safe"]),
             ("--encoding-errors", table["encoding_errors"] != "strict")) if value]
    if given:
        raise click.UsageError(f"{', '.join(given)} only go(es) with --csv TABLE")


@reports_errors
def _predict_table(table, *, names, file, as_json, k, min_confidence, checkpoint, device, batch_size, threads,
                   precision, backend, verbosity, columns, out, delimiter, encoding_errors, all_probs, excel_safe,
                   **predict_options) -> None:
    """predict --csv: the table's rows with their answers, to --out or stdout. `predict_options`:
    predict's other options (--coverage, --prior, --full-name)."""
    if names or file or as_json:
        raise click.UsageError("--csv reads its names from the table: give no names, --file or --json with it")
    from charclf.data.delimited import check_delimiter
    from charclf.predict.tables import write_predictions

    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter.lower(), delimiter)
        check_delimiter(delimiter)
    options = _options(k=k, min_confidence=min_confidence, **predict_options)
    inputs = [table, options.prior]
    check_out(out, "text", checkpoint, inputs)
    clf = _predictor(checkpoint, device, threads, precision, backend, batch=True)
    options = options.for_model(clf)
    started = time.perf_counter()
    summary = write_predictions(clf, table, out, columns, options, all_probs, delimiter, encoding_errors,
                                batch_size, show_progress(verbosity), excel_safe, inputs)
    seconds = time.perf_counter() - started
    abstained = f", {summary.abstained:,} below --min-confidence" if min_confidence is not None else ""
    say(verbosity, f"wrote {summary.rows:,} rows to {out or 'stdout'} in {seconds:.1f} s "
                   f"({summary.rows / max(seconds, 1e-9):,.0f} rows/s); {summary.errors:,} name(s) could not be "
                   f"classified (see the error column){abstained}", NORMAL if out else VERBOSE)


def _read_lines(file: Path | str):
    """Yield (line number, text, error or None) from a file or '-' (stdin), streaming.

    A line that is not valid UTF-8, or too long to be a name, is reported by number; it does
    not stop the others (charclf.names.lines)."""
    from tqdm import tqdm

    from charclf.names.lines import read_lines

    if str(file) == "-" and sys.stdin is None:
        raise click.ClickException("cannot read names from stdin: it is closed")
    stream = sys.stdin.buffer if str(file) == "-" else None
    try:
        handle = stream or open(file, "rb")
    except OSError as e:
        raise click.ClickException(f"cannot read {file}: {e.strerror or e}") from None
    meta = click.get_current_context().meta  # -q/-v, and where the count of lines read goes
    bar = tqdm(unit=" lines", unit_scale=True, desc="predicting", file=sys.stderr, leave=False,
               disable=not show_progress(meta.get(VERBOSITY, NORMAL)))
    with handle, bar:
        for item in read_lines(handle):
            meta[LINES_READ] = item[0]
            bar.update()
            yield item


@main.command()
@click.argument("names", nargs=-1)
@click.option("-k", "--top-k", "--top", "k", type=PredictInt("k", min=1, max=MAX_K), default=3, show_default=True,
              help="How many labels to show per name (top_k over HTTP; --top: its older name).")
@click.option("--file", "file", type=FilePath(dir_okay=False, allow_dash=True),
              help="Read names from FILE, one per line ('-' for stdin).")
@min_confidence_option("Answer `unknown` (with the reason and the best guess) when the top calibrated "
                       "probability is below P (0-1).")
@click.option("--coverage", type=PredictFloat("coverage", min=0, max=1, min_open=True, max_open=True), metavar="C",
              help="Also give each name its conformal label set: the smallest set of labels that holds "
                   "the true label with probability C (e.g. 0.9), for names like the training data's.")
@prior_option
@click.option("--full-name", "full_names", is_flag=True,
              help="Names are full names (\"Geoffrey Hinton\", \"Hinton, Geoffrey\", \"Nguyen Van An\"): "
                   "classify the family name: the part before a comma, else the first word of a name written in "
                   "Hangul, Han or kana or starting with a common Vietnamese, Korean or Chinese family name, else "
                   "the last word with its particles (van, de, al, ...); --json says which rule chose it.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per name and line (JSON Lines, ASCII-escaped).")
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=32768, show_default=True,
              help="Names (or --csv rows) read and predicted together from a file (fewer, larger batches: "
                   "faster, up to about this size).")
@table_options
@reports_errors
def predict(names, k, file, min_confidence, coverage, prior, full_names, as_json, checkpoint, device, batch_size,
            threads, precision, backend):
    """Predict the likeliest languages of NAMES, with calibrated probabilities.

    Names come from the arguments, or from --file (one per line; '-' or a lone '-' argument
    reads stdin). Names in other scripts are transliterated to Latin first and shown as
    read (Иванов -> Ivanov); where that reading is known to mislead (Han characters read as
    Mandarin, Arabic short vowels guessed) the answer says so. The script itself weighs in (a
    name in Hangul is Korean, in Greek letters Greek; --json reports it as "script"). A name
    with no letters at all is answered `unknown` with the reason. An undecodable line gets an error on
    stderr (or in its JSON object) and the others are still predicted; the exit code is then 1.

    --csv TABLE reads a CSV/TSV table whose first row names its columns and writes every row
    back (to --out, else stdout), in order, with all its cells, followed by the answer for
    --column: label, probability, label_2, probability_2 ... up to -k, then abstained and
    best_guess (with --min-confidence: label is `unknown` below it), error (why a name could
    not be classified: empty, no letters) and, with --all-probs, probability_<Label> for every
    label. Several --column options (first and last name, say) classify each column on its own,
    its answer columns prefixed "<column>_" (as they are when a name would clash with a column
    the table has); the shipped model learnt surnames, so its answers for first names are weaker.
    The table is streamed in batches: memory stays flat however long it is.

    \b
    Examples:
      charclf predict Hinton Satoshi Иванов -k 5
      charclf predict --file names.txt --min-confidence 0.5 --json > predictions.jsonl
      charclf predict --csv people.csv --column surname --out people-labelled.csv
      charclf predict --csv people.tsv --column first --column last --all-probs > out.tsv
    """
    if names == ("-",) and not file:
        names, file = (), "-"
    if names and file:
        raise click.UsageError("give names as arguments or with --file, not both")
    if not names and not file:
        raise click.UsageError("no names: give some as arguments, or use --file FILE ('-' for stdin)")
    from charclf.names.lines import read_argument

    options = _options(k, min_confidence, coverage, prior, full_names)
    clf = _predictor(checkpoint, device, threads, precision, backend, batch=bool(file))
    options = options.for_model(clf)
    lines = (read_argument(i, name) for i, name in enumerate(names, start=1)) if names else _read_lines(file)
    failed = total = 0
    chunk = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= batch_size:
            failed += _predict_chunk(clf, chunk, options, as_json)
            total += len(chunk)
            chunk = []
    failed += _predict_chunk(clf, chunk, options, as_json)
    total += len(chunk)
    if failed:
        click.echo(f"Error: {failed} of {total} lines could not be read", err=True)
        sys.exit(1)


def _options(k: int = 3, min_confidence: float | None = None, coverage: float | None = None,
             prior: str | None = None, full_names: bool = False):
    """predict's options as one PredictOptions (charclf.predict.options), checked before the model
    loads: a combination that cannot be is a usage error (exit 2), worded as every door words it.
    Checked against the model once it is loaded (PredictOptions.for_model: a checkpoint without
    label sets is exit 1)."""
    from charclf.predict.options import OptionError, PredictOptions

    try:
        return PredictOptions(k, min_confidence, coverage, prior, full_names)
    except OptionError as e:
        raise click.UsageError(e.worded(PREDICT_SPELLING)) from None


def _predictor(checkpoint, device: str, threads: int | None, precision: str, backend: str, batch: bool):
    """The model to predict with (charclf.predict.loading: ONNX Runtime where it can, else torch)."""
    clf = load_model(checkpoint, device, precision, threads, backend, batch)
    # The model and all that was imported live until the run ends: frozen, the garbage collector no
    # longer walks them again and again while batches of predictions come and go (about 0.5 s per
    # 100,000 names, most of its time).
    gc.freeze()
    return clf


def _predict_chunk(clf, chunk, options, as_json: bool) -> int:
    """Predict one batch of (line number, name, read error); print results; return read errors."""
    from charclf.predict.rows import json_row

    readable = [name for _, name, error in chunk if error is None]
    predictions = iter(clf.predict(readable, **options.keywords()) if readable else [])
    failed = 0
    width = min(max((len(name) for _, name, _ in chunk), default=0), 30)
    out = []  # stdout, written in one go: one echo per name would cost more than the model
    for number, name, error in chunk:
        if error:
            failed += 1
            if out:  # keep stdout and stderr in input order
                click.echo("\n".join(out))
                out = []
            click.echo(f"{name!r}: {error}", err=True)
            if as_json:
                out.append(json_row(name, error=error, model=clf.model_id))
            continue
        p = next(predictions)
        if as_json:
            out.append(json_row(name, p))
            continue
        if p.abstained:
            answer = f"unknown: {p.reason}"
            if p.top:
                answer += f" (best guess {p.top[0][0]} {p.top[0][1]:.3f})"
        else:
            answer = "  ".join([f"{label} {prob:.3f}" for label, prob in p.top])
        if p.label_set is not None:
            answer += f"  [{options.coverage * 100:g}% set: {', '.join(p.label_set)}]"
        if p.as_read == name and not p.caveats:  # the usual case: a printable name, nothing to note
            out.append(f"{name:<{width}}  {answer}")
            continue
        shown = printable(name)  # one line per name, always; nothing a terminal would act on
        read = p.family_name.part if p.family_name else name.strip()
        notes = ([f"family name {p.family_name.part}"] if p.family_name and p.family_name.part != name else []) + \
            ([f"read as {p.as_read}"] if p.as_read and p.as_read != read else []) + p.caveats
        out.append(f"{shown:<{width}}  {answer}" + (f"  ({'; '.join(notes)})" if notes else ""))
    if out:
        click.echo("\n".join(out))
    return failed
