"""`python -m charclf.spark IN OUT --column surname`: a Parquet or CSV table classified on Spark.

Under spark-submit, give this file's path (python -c 'import charclf.spark.__main__ as m;
print(m.__file__)') as the application; the master and resources come from spark-submit. IN and
OUT are Parquet unless their name ends in .csv or .tsv (a folder of part files, as Spark writes,
with a header row; cells read as text, RFC 4180 quoting, quoted newlines allowed; every cell
read and written as it is, spaces included). Written as CSV, the cells charclf composes never begin
as a formula would (charclf.predict.tables.safe_cell, as `predict --csv` writes them). The options
are checked before Spark starts (charclf.predict.options, as every door checks them).
"""

from __future__ import annotations

import os
import sys

import click

from charclf.cli.params import FilePath, PredictFloat, PredictInt
from charclf.errors import CharclfError

TEXT = {".csv": ",", ".tsv": "\t"}  # the suffixes read and written as delimited text
# Spark's CSV writer trims every cell unless told not to (its reader, by default, does not).
KEEP_SPACES = {"ignoreLeadingWhiteSpace": False, "ignoreTrailingWhiteSpace": False}


def _delimiter(path: str) -> str | None:
    lowered = path.rstrip("/").lower()
    return next((d for suffix, d in TEXT.items() if lowered.endswith(suffix)), None)


def read(spark, path: str):
    delimiter = _delimiter(path)
    if delimiter is None:
        return spark.read.parquet(path)
    return spark.read.csv(path, header=True, sep=delimiter, quote='"', escape='"', multiLine=True,
                          inferSchema=False, encoding="UTF-8", **KEEP_SPACES)


def spread(frame):
    """`frame` over every core Spark has: a table read in fewer partitions (a CSV file read whole,
    as quoted newlines require, is one) is dealt out round-robin first; else it is left as it is."""
    cores = frame.sparkSession.sparkContext.defaultParallelism
    return frame.repartition(cores) if frame.rdd.getNumPartitions() < cores else frame


def write(frame, path: str, overwrite: bool, composed: list[str]) -> None:
    """`frame` to `path`; as CSV, its `composed` columns (charclf's answers) made formula-safe."""
    delimiter = _delimiter(path)
    if delimiter is not None:
        frame = _formula_safe(frame, composed)
    writer = frame.write.mode("overwrite" if overwrite else "errorifexists")
    if delimiter is None:
        writer.parquet(path)
    else:
        writer.csv(path, header=True, sep=delimiter, quote='"', escape='"', encoding="UTF-8", **KEEP_SPACES)


def _formula_safe(frame, columns: list[str]):
    """`frame` with the text cells of `columns` through safe_cell, on the executors."""
    from pyspark.sql.types import StringType

    text = [f.name for f in frame.schema.fields if f.name in columns and isinstance(f.dataType, StringType)]

    def job(batches):
        from charclf.predict.tables import safe_cell

        for batch in batches:
            for name in text:
                batch[name] = batch[name].map(lambda value: value if value is None else safe_cell(value))
            yield batch

    return frame.mapInPandas(job, frame.schema) if text else frame


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="IN")
@click.argument("target", metavar="OUT")
@click.option("--column", "columns", multiple=True, required=True,
              help="The column of names. Repeat it to classify several columns, each on its own.")
@click.option("--model", type=FilePath(dir_okay=False), help="The model file, on the driver (default: "
              "charclf's default model, its .onnx when there is one).")
@click.option("-k", "--top", "k", type=PredictInt("k", min=1, max=50), default=3, show_default=True,
              help="Labels (with their probabilities) per name.")
@click.option("--min-confidence", type=PredictFloat("min_confidence", min=0, max=1), metavar="P",
              help="Below it, the label is 'unknown'.")
@click.option("--all-probs", is_flag=True, help="A probability_<Label> column for every label.")
@click.option("--full-name", "full_names", is_flag=True, help="Each cell is a full name: its family name is read.")
@click.option("--master", help="Spark's master when not started by spark-submit (e.g. local[2]).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (default: stop).")
def main(source, target, columns, model, k, min_confidence, all_probs, full_names, master, overwrite):
    """Classify the names of a Parquet or CSV table on Spark; write the rows with their answers.

    \b
      spark-submit --master local[2] .../charclf/spark/__main__.py people.parquet out.parquet --column surname
      python -m charclf.spark people.csv labelled.csv --column first --column last --master local[4]
    """
    from pyspark.sql import SparkSession

    from charclf.spark.engine import classify

    if master and master.startswith("local"):  # the workers run this Python, with charclf and its extras
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ours = SparkSession.getActiveSession() is None  # else a notebook's or a test's: it is left running
    builder = SparkSession.builder.appName("charclf")
    spark = (builder.master(master) if master else builder).getOrCreate()
    if ours:
        spark.sparkContext.setLogLevel("WARN")  # spark-submit's default is INFO: a page per job
    try:
        table = spread(read(spark, source))
        frame = classify(table, list(columns), model, k, min_confidence, all_probs, full_names=full_names)
        write(frame, target, overwrite, frame.columns[len(table.columns):])
    finally:
        if ours:
            spark.stop()


def run(args: list[str] | None = None) -> None:
    """main() on `args` (default: the command line), with charclf's errors and Spark's analysis
    errors (a missing file, say) as one line."""
    try:
        main.main(args, standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except CharclfError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(getattr(e, "exit_code", 1))
    except Exception as e:
        if type(e).__name__ not in ("AnalysisException", "Py4JJavaError", "PySparkException"):
            raise
        click.echo(f"Error: {(str(e).strip().splitlines() or [type(e).__name__])[0]}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
