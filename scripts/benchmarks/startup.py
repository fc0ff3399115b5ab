"""How long charclf's short commands take, against `python -c "import torch"` on the same machine.

Each command runs --runs times in a fresh process, the commands taking turns so that a busy moment
of the machine hits them all alike; the table (printed, and written to --out) shows the best and the
median wall time. `charclf predict Jones` uses the shipped model ($CHARCLF_HOME is pointed at an
empty folder).

    python scripts/benchmark.py startup [--runs 9] [--out docs/startup.md]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    charclf_script,
    in_fresh_processes,
    load_average,
    md_table,
    shown_command,
    thread_env,
    utc_now,
)

TORCH = 'python -c "import torch"'  # the yardstick


def run(args) -> None:
    charclf = charclf_script()
    commands = {
        'python -c "pass"': [sys.executable, "-c", "pass"],
        TORCH: [sys.executable, "-c", "import torch"],
        "charclf --help": [charclf, "--help"],
        "charclf predict Jones": [charclf, "predict", "Jones"],
    }
    with tempfile.TemporaryDirectory() as home:
        times = in_fresh_processes(commands, args.runs, thread_env(home=Path(home)))

    torch_median = statistics.median(times[TORCH])
    rows = [[f"`{name}`", f"{min(t):.3f}", f"{statistics.median(t):.3f}", f"{statistics.median(t) / torch_median:.2f}"]
            for name, t in times.items()]
    text = "\n".join([
        "# Start-up: charclf's short commands",
        "",
        f"Run {utc_now()} with `{shown_command('startup', args, 'runs')}` on {os.cpu_count()} cores "
        f"(load average {load_average()} at the end), Python {platform.python_version()}.",
        "Each command ran in a fresh process, the commands taking turns; wall seconds.",
        "",
        *md_table(["command", "best s", "median s", "median / import torch"], rows),
        "",
        "`charclf --help` imports neither torch nor matplotlib; `charclf predict` (the shipped model's .onnx on",
        "ONNX Runtime) imports neither either, reads the model and predicts, and nothing else (no dataset).",
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
