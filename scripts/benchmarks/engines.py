"""Bulk classification: rows/s of `predict --csv`, Spark local[1] vs local[2], Dask 1 vs 2 workers.

    python scripts/benchmark.py engines --rows 1000000 --markdown docs/engines.md

1. Writes a name,label CSV of --rows rows (once, into --work-dir): names drawn from the real dataset
   (--data, else $CHARCLF_DATA) and edited (scripts/benchmarks/scale.py), so most are distinct.
2. Exports the shipped model to .onnx (`charclf export`) unless --model is given.
3. Classifies the file's name column with each system, CSV in and CSV out, ONNX Runtime on one
   thread per process (CHARCLF_THREADS=1, OMP_NUM_THREADS=1): `charclf predict --csv`; Spark
   (`python -m charclf.spark --master local[N]`, which deals the one CSV file out to N tasks); Dask
   (charclf.dask on a LocalCluster of N single-thread worker processes, the CSV read in blocks of
   2 MB). Each in a fresh process; rows/s counts from the start of that process to the last row
   written (a JVM's or a cluster's start-up included, as a user waits for it).
4. Prints a Markdown table (and with --markdown puts it between the markers of that file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DRIVER, load_average, md_table, replace_between, shown_command, thread_env, utc_now

BEGIN, END = "<!-- engines benchmark: begin -->", "<!-- engines benchmark: end -->"


def dask_child(args) -> None:
    """One Dask run (this process is the client): the CSV through charclf.dask, written as CSV parts."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import charclf.dask

    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, Client(cluster):
        frame = dd.read_csv(str(args.csv), dtype=str, keep_default_na=False, blocksize="2MB")
        charclf.dask.classify(frame, "name", model=args.model).to_csv(str(args.out_dir / "part-*.csv"), index=False)


def commands(args, csv_path: Path, model: Path, out: Path) -> dict[str, list[str]]:
    python, spark = sys.executable, [sys.executable, "-m", "charclf.spark", str(csv_path)]
    runs = {"predict --csv (1 process)": [python, "-m", "charclf", "predict", "--csv", str(csv_path), "--column",
                                          "name", "--checkpoint", str(model), "-q", "--out", str(out / "predict.csv")]}
    for n in args.workers:
        runs[f"Spark local[{n}]"] = [*spark, str(out / f"spark-{n}.csv"), "--column", "name", "--model", str(model),
                                     "--master", f"local[{n}]", "--overwrite"]
    for n in args.workers:
        runs[f"Dask, {n} worker(s)"] = [python, str(DRIVER), "engines", "--child", "dask", "--workers", str(n),
                                        "--csv", str(csv_path), "--model", str(model), "--out-dir",
                                        str(out / f"dask-{n}")]
    return runs


def timed(command: list[str]) -> float:
    env = {**thread_env(1), "PYSPARK_PYTHON": sys.executable}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"Error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def run(args) -> None:
    if args.child == "dask":
        args.workers = args.workers[0]
        return dask_child(args)
    from benchmarks.common import data_dir
    from benchmarks.scale import write_csv

    args.work_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.work_dir / f"names-{args.rows}.csv"
    if not csv_path.exists():
        write_csv(csv_path, args.rows, data_dir(args.data))
    model = args.model or args.work_dir / "model.onnx"
    if not model.exists():
        subprocess.run([sys.executable, "-m", "charclf", "export", str(model)], check=True, capture_output=True)
    load, started, rows = load_average(), utc_now(), []
    chosen = set((args.only or "predict,spark,dask").split(","))
    for name, command in commands(args, csv_path, model, args.work_dir).items():
        if name.split()[0].strip(",").lower() not in chosen:
            continue
        seconds = timed(command)
        rows.append([name, f"{seconds:.1f}", f"{args.rows / seconds:,.0f}", f"{seconds / args.rows * 1e6 / 60:.1f}"])
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    report = "\n".join([
        f"Run {started} with `{shown_command('engines', args, 'rows', 'workers', *(['only'] if args.only else []))}`: "
        f"{args.rows:,} rows "
        f"({csv_path.stat().st_size / 1e6:.0f} MB of CSV), {os.cpu_count()} cores, load average {load} at the start "
        f"and {load_average()} at the end; one ONNX Runtime thread per process.", "",
        *md_table(["system", "wall s", "rows/s", "minutes per million rows"], rows)])
    print(report)
    if args.markdown:
        replace_between(args.markdown, BEGIN, END, report)
