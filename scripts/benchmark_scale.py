"""How training on a streamed CSV scales: throughput with 1 and 2 processes (torchrun), and
peak memory as the file grows (e.g. 1M vs 5M lines). Not a test: CI does not run it.

    python scripts/benchmark_scale.py --data data/names --lines 1000000,5000000 --procs 1,2 \
        --max-steps 400 --out docs/scaling.md

1. Writes synthetic name,label CSVs (once, into --work-dir): names drawn from the real dataset
   (--data, else $CHARCLF_DATA) and perturbed (a letter changed, inserted or dropped, a suffix),
   so that most of the millions of lines are distinct names.
2. For each file and process count, starts `torchrun --standalone --nproc_per_node P` on this
   script in worker mode: each rank scans the file (the first streaming pass), then trains the
   default model for --max-steps steps of its share of epoch 1 through charclf's own training step (training.Run)
   (DDP when P > 1), and reports its names/s and its peak RSS (getrusage ru_maxrss).
3. Prints a Markdown report (and writes it to --out).

One epoch over 5M lines is not needed to measure throughput: --max-steps bounds each run.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SUFFIXES = ["", "", "", "", "a", "o", "i", "e", "s", "son", "ez", "ov", "ski", "ini", "moto", "escu"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def perturb(name: str, rng: random.Random) -> str:
    """A plausible variant of a real name: one edit and maybe a suffix."""
    chars = list(name)
    what = rng.random()
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
    pairs = [(name, ds.labels[label]) for name, label in ds.pairs]
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")  # quotes the few names that hold a comma
        out.writerow(["name", "label"])
        for start in range(0, lines, 100_000):
            batch = []
            for _ in range(min(100_000, lines - start)):
                name, label = rng.choice(pairs)
                batch.append((perturb(name, rng) if rng.random() < 0.9 else name, label))
            out.writerows(batch)
    tmp.replace(path)


def worker(args) -> None:
    """One torchrun rank: scan, then --max-steps training steps; writes its numbers as JSON."""
    import torch

    from charclf.training import distributed
    from charclf.data.batches import StreamSource
    from charclf.config import ModelConfig, defaults_for
    from charclf.training.loop import train_one_epoch
    from charclf.data.stream import scan
    from charclf.names.text import DEFAULT_ALPHABET
    from charclf.training.train import Run

    torch.set_num_threads(1)
    rss_start = rss_mb()
    with distributed.session("cpu") as dist:
        started = time.perf_counter()
        ds = scan(Path(args.csv), DEFAULT_ALPHABET, seed=0)
        scan_s = time.perf_counter() - started
        rss_scan = rss_mb()
        source = StreamSource(ds)
        options, config = defaults_for("gru", epochs=1)
        model_config = ModelConfig(arch="gru", n_letters=len(DEFAULT_ALPHABET), n_classes=len(ds.labels), **options)
        out = Path(args.result_dir) / "unused.pt"  # nothing is saved: only the epoch's steps run
        run = Run(source, Path(args.csv), model_config, config, out, dist)
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
        result = {
            "rank": dist.rank, "world_size": dist.world_size, "rows": sum(ds.size(s) for s in ("train", "val", "test")),
            "scan_s": scan_s, "scan_rows_per_s": sum(ds.size(s) for s in ("train", "val", "test")) / scan_s,
            "steps": args.max_steps, "names": names, "train_s": train_s,
            "names_per_s": names / train_s, "rss_start_mb": rss_start, "rss_after_scan_mb": rss_scan,
            "max_rss_mb": rss_mb(),
        }
    Path(args.result_dir, f"rank{result['rank']}.json").write_text(json.dumps(result))


def run_one(script: Path, csv_path: Path, procs: int, args, result_dir: Path) -> list[dict]:
    result_dir.mkdir(parents=True, exist_ok=True)
    for old in result_dir.glob("rank*.json"):
        old.unlink()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
               str(script), "--worker", "--csv", str(csv_path), "--max-steps", str(args.max_steps),
               "--result-dir", str(result_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        sys.exit(f"the {procs}-process run on {csv_path} failed:\n{done.stderr[-3000:]}")
    return [json.loads(p.read_text()) for p in sorted(result_dir.glob("rank*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CHARCLF_DATA") or "data/names"),
                        help="folder of <Label>.txt files to draw names from")
    parser.add_argument("--lines", default="1000000,5000000", help="CSV sizes, comma-separated")
    parser.add_argument("--procs", default="1,2", help="process counts, comma-separated")
    parser.add_argument("--max-steps", type=int, default=400, help="training steps per process and run")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/scale"), help="where the CSVs go")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one torchrun may take")
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--result-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    load = os.getloadavg()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for lines in [int(x) for x in args.lines.split(",")]:
        csv_path = args.work_dir / f"names-{lines}.csv"
        if not csv_path.exists():
            t = time.perf_counter()
            write_csv(csv_path, lines, args.data)
            print(f"wrote {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
                  file=sys.stderr)
        for procs in [int(x) for x in args.procs.split(",")]:
            ranks = run_one(Path(__file__).resolve(), csv_path, procs, args, args.work_dir / f"result-{lines}-{procs}")
            rows.append((lines, csv_path.stat().st_size, procs, ranks))
            print(f"{lines:,} lines, {procs} process(es): " + "; ".join(
                f"rank {r['rank']} {r['names_per_s']:,.0f} names/s, max RSS {r['max_rss_mb']:.0f} MB" for r in ranks),
                file=sys.stderr)
    report = render(rows, args, started, load)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(rows, args, started, load) -> str:
    import torch

    lines = [
        "# Scaling: streamed CSV, 1 vs 2 processes",
        "",
        f"Run {started} with `python scripts/benchmark_scale.py --lines {args.lines} --procs {args.procs} "
        f"--max-steps {args.max_steps}`.",
        "",
        f"Machine: {os.cpu_count()} CPU cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start "
        f"(other jobs were running), Python {platform.python_version()}, torch {torch.__version__}, "
        "1 torch thread per process (OMP_NUM_THREADS=1), gloo.",
        "",
        "Each run: `torchrun --standalone --nproc_per_node P`; every rank scans the whole file (labels, counts, "
        "split by name hash, bounded validation/test samples), then trains charclf's default model (gru, "
        f"batch 128 per process) for {args.max_steps} steps of its share of epoch 1, reading the file as a stream. "
        "names/s is per process (its own names over its own training seconds); peak RSS is each rank's "
        "`ru_maxrss` (interpreter, torch and all included).",
        "",
        "| lines | file MB | processes | scan s (rows/s) | names/s per process | names/s, all processes | peak RSS per rank (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, size, procs, ranks in rows:
        per = [r["names_per_s"] for r in ranks]
        scan_s = max(r["scan_s"] for r in ranks)
        rates = " / ".join(f"{x:,.0f}" for x in per)
        rss = " / ".join(f"{r['max_rss_mb']:.0f}" for r in ranks)
        lines.append(f"| {n:,} | {size / 1e6:.0f} | {procs} | {scan_s:.1f} ({n / scan_s:,.0f}) | {rates} | "
                     f"{sum(per):,.0f} | {rss} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
