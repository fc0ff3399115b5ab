"""How training on a streamed CSV scales with processes (torchrun) and with the file's size.

Throughput with 1 and 2 processes, and peak memory as the file grows (e.g. 1M vs 5M lines). Not a
test: CI does not run it.

    python scripts/benchmark.py scale --data data/names --lines 1000000,5000000 --procs 1,2 \\
        --max-steps 400 --out docs/scaling.md

1. Writes synthetic name,label CSVs (once, into --work-dir): names drawn from the real dataset
   (--data, else $CHARCLF_DATA) and perturbed (a letter changed, inserted or dropped, a suffix),
   so that most of the millions of lines are distinct names.
2. For each file and process count, starts `torchrun --standalone --nproc_per_node P` on
   `scripts/benchmark.py scale --worker`: each rank scans the file (the first streaming pass), then
   trains charclf's default model for --max-steps steps of its share of epoch 1 through charclf's own
   training step (training.Run; DDP when P > 1), and reports its names/s and its peak RSS (ru_maxrss).
3. Prints a Markdown report (and writes it to --out).

One epoch over 5M lines is not needed to measure throughput: --max-steps bounds each run.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import platform
import random
import string
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DRIVER, data_dir, md_table, peak_rss_mb, shown_command, utc_now

LETTERS = string.ascii_lowercase
SUFFIXES = ["", "", "", "", "a", "o", "i", "e", "s", "son", "ez", "ov", "ski", "ini", "moto", "escu"]


def perturb(name: str, rng: random.Random) -> str:
    """A plausible variant of a real name: one edit and maybe a suffix."""
    chars, what = list(name), rng.random()
    i = rng.randrange(len(chars))
    if what < 0.3:
        chars[i] = rng.choice(LETTERS)
    elif what < 0.55:
        chars.insert(i, rng.choice(LETTERS))
    elif what < 0.7 and len(chars) > 3:
        del chars[i]
    return "".join(chars) + rng.choice(SUFFIXES)


def write_csv(path: Path, lines: int, data: Path, seed: int = 0) -> None:
    """`lines` rows of name,label (plus a header), drawn from the folder dataset and perturbed."""
    from charclf.data.dataset import load_dataset

    ds = load_dataset(data)
    pairs, rng = [(name, ds.labels[label]) for name, label in ds.pairs], random.Random(seed)
    tmp = path.with_suffix(".tmp")

    def row() -> tuple[str, str]:
        name, label = rng.choice(pairs)
        return perturb(name, rng) if rng.random() < 0.9 else name, label

    with open(tmp, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")  # quotes the few names that hold a comma
        out.writerow(["name", "label"])
        out.writerows(row() for _ in range(lines))
    tmp.replace(path)


def default_model():
    """(arch, model options, TrainConfig) of charclf's default model (charclf.train's own arch), one epoch."""
    import inspect

    from charclf.config import defaults_for
    from charclf.training.train import train

    arch = inspect.signature(train).parameters["arch"].default
    return (arch, *defaults_for(arch, epochs=1))


def worker(args) -> None:
    """One torchrun rank: scan, then --max-steps training steps; writes its numbers as JSON."""
    import torch

    from charclf.config import ModelConfig
    from charclf.data.batches import StreamSource
    from charclf.data.stream import scan
    from charclf.names.text import DEFAULT_ALPHABET
    from charclf.training import distributed
    from charclf.training.loop import train_one_epoch
    from charclf.training.train import Run

    torch.set_num_threads(1)
    rss_start = peak_rss_mb()
    arch, options, config = default_model()
    with distributed.session("cpu") as dist:
        started = time.perf_counter()
        ds = scan(args.csv, DEFAULT_ALPHABET, seed=config.seed)
        scan_s, rss_scan = time.perf_counter() - started, peak_rss_mb()
        rows = sum(ds.size(s) for s in ("train", "val", "test"))
        source = StreamSource(ds)
        model_config = ModelConfig(arch=arch, n_letters=len(DEFAULT_ALPHABET), n_classes=len(ds.labels), **options)
        run = Run(source, args.csv, model_config, config, args.result_dir / "unused.pt", dist)  # nothing is saved
        names = 0

        def bounded(batches):
            """charclf's own batches of epoch 1, stopped after max_steps of them."""
            nonlocal names
            for batch in itertools.islice(batches, args.max_steps):
                names += len(batch[0])
                yield batch

        dist.gather_objects(None)  # all ranks start the clock together
        started = time.perf_counter()
        run.net.train()
        train_one_epoch(bounded(source.epoch(1, config.batch_size, config.bucket, dist.rank, dist.world_size)),
                        run.step, args.max_steps)
        train_s = time.perf_counter() - started
        result = {"rank": dist.rank, "world_size": dist.world_size, "rows": rows, "scan_s": scan_s,
                  "scan_rows_per_s": rows / scan_s, "steps": args.max_steps, "names": names, "train_s": train_s,
                  "names_per_s": names / train_s, "rss_start_mb": rss_start, "rss_after_scan_mb": rss_scan,
                  "max_rss_mb": peak_rss_mb()}
    (args.result_dir / f"rank{result['rank']}.json").write_text(json.dumps(result))


def run_one(csv_path: Path, procs: int, args, result_dir: Path) -> list[dict]:
    result_dir.mkdir(parents=True, exist_ok=True)
    for old in result_dir.glob("rank*.json"):
        old.unlink()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
               str(DRIVER), "scale", "--worker", "--csv", str(csv_path), "--max-steps", str(args.max_steps),
               "--result-dir", str(result_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        sys.exit(f"the {procs}-process run on {csv_path} failed:\n{done.stderr[-3000:]}")
    return [json.loads(p.read_text()) for p in sorted(result_dir.glob("rank*.json"))]


def render(rows, args, started: str, load: tuple) -> str:
    import torch

    arch, _, config = default_model()
    table = []
    for n, size, procs, ranks in rows:
        per = [r["names_per_s"] for r in ranks]
        scan_s = max(r["scan_s"] for r in ranks)
        table.append([f"{n:,}", f"{size / 1e6:.0f}", procs, f"{scan_s:.1f} ({n / scan_s:,.0f})",
                      " / ".join(f"{x:,.0f}" for x in per), f"{sum(per):,.0f}",
                      " / ".join(f"{r['max_rss_mb']:.0f}" for r in ranks)])
    return "\n".join([
        "# Scaling: streamed CSV, 1 vs 2 processes",
        "",
        f"Run {started} with `{shown_command('scale', args, 'lines', 'procs', 'max_steps')}`.",
        "",
        f"Machine: {os.cpu_count()} CPU cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start "
        f"(other jobs were running), Python {platform.python_version()}, torch {torch.__version__}, "
        "1 torch thread per process (OMP_NUM_THREADS=1), gloo.",
        "",
        "Each run: `torchrun --standalone --nproc_per_node P`; every rank scans the whole file (labels, counts, "
        f"split by name hash, bounded validation/test samples), then trains charclf's default model ({arch}, "
        f"batch {config.batch_size} per process) for {args.max_steps} steps of its share of epoch 1, reading the "
        "file as a stream. names/s is per process (its own names over its own training seconds); peak RSS is each "
        "rank's `ru_maxrss` (interpreter, torch and all included).",
        "",
        *md_table(["lines", "file MB", "processes", "scan s (rows/s)", "names/s per process",
                   "names/s, all processes", "peak RSS per rank (MB)"], table, align="r" * 7),
    ]) + "\n"


def run(args) -> None:
    if args.worker:
        return worker(args)
    load, started = os.getloadavg(), utc_now()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for lines in args.lines:
        csv_path = args.work_dir / f"names-{lines}.csv"
        if not csv_path.exists():
            t = time.perf_counter()
            write_csv(csv_path, lines, data_dir(args.data))
            print(f"wrote {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
                  file=sys.stderr)
        for procs in args.procs:
            ranks = run_one(csv_path, procs, args, args.work_dir / f"result-{lines}-{procs}")
            rows.append((lines, csv_path.stat().st_size, procs, ranks))
            print(f"{lines:,} lines, {procs} process(es): " + "; ".join(
                f"rank {r['rank']} {r['names_per_s']:,.0f} names/s, max RSS {r['max_rss_mb']:.0f} MB" for r in ranks),
                file=sys.stderr)
    report = render(rows, args, started, load)
    print(report)
    if args.out:
        args.out.write_text(report)
