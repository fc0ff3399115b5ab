#!/usr/bin/env python
"""How long charclf's short commands take, against `python -c "import torch"` on the same machine.

Each command runs --runs times in a fresh process, alternating with the others so that a busy
moment of the machine hits them all alike; the table shows the best and the median wall time.
`charclf predict Jones` uses the shipped model ($CHARCLF_HOME is pointed at an empty folder).

    python scripts/benchmark_startup.py [--runs 9] [--out docs/startup.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("docs/startup.md"))
    args = parser.parse_args()

    charclf = Path(sys.executable).with_name("charclf")
    if not charclf.exists():
        raise SystemExit(f"Error: no charclf command beside {sys.executable}: pip install -e . first")
    commands = {
        'python -c "pass"': [sys.executable, "-c", "pass"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "charclf --help": [str(charclf), "--help"],
        "charclf predict Jones": [str(charclf), "predict", "Jones"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CHARCLF_HOME": home}
        for _ in range(args.runs):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - started)

    torch_median = statistics.median(times['python -c "import torch"'])
    rows = [f"| `{name}` | {min(t):.3f} | {statistics.median(t):.3f} | {statistics.median(t) / torch_median:.2f} |"
            for name, t in times.items()]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = "\n".join([
        "# Start-up: charclf's short commands",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with "
        f"`python scripts/benchmark_startup.py --runs {args.runs}` on {os.cpu_count()} cores "
        f"(load average {load} at the end), Python {platform.python_version()}.",
        "Each command ran in a fresh process, the commands taking turns; wall seconds.",
        "",
        "| command | best s | median s | median / import torch |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "`charclf --help` imports neither torch nor matplotlib; `charclf predict` imports torch, reads the",
        "checkpoint and predicts, and nothing else (no matplotlib, no dataset).",
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
