"""Load test of `charclf serve` with wrk: requests/s, latency, names/s and memory, 1 and 2 workers.

For each --workers count it starts `charclf serve` (the shipped model, 127.0.0.1, one model
thread per process, the JSON access log written to a file) and drives it with wrk (Debian
package `wrk`) from a Lua script: single-name
GET /api/predict (distinct names from the dataset, else a fixed list), POST /api/predict with
100 names, and GET /healthz (wrk runs for a time: a 3-second run finds the rate, then a run
long enough for about the number of requests asked). It samples the server's resident memory (all its processes) while
each runs. Client and server share the machine's cores, as they would on a one-box deployment.

    python scripts/benchmark.py load                        # workers 1 and 2, 100,000 GETs each
    python scripts/benchmark.py load --requests 20000 --post-requests 500 --workers 1
    python scripts/benchmark.py load --out docs/serving.md  # also (re)write its table there
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import httpx

from benchmarks.common import load_average, md_table, replace_between, utc_now

BEGIN, END = "<!-- benchmark load: begin -->", "<!-- benchmark load: end -->"
FALLBACK = ["Hinton", "Satoshi", "Rossi", "Nguyen", "Müller", "Иванов", "O'Brien", "Papadopoulos", "Kowalski",
            "Dvořák", "Fernandes", "van der Berg", "MacDonald", "Kim", "Zhang", "Haddad", "Dubois", "Smith"]
LUA = """
local names = {%(names)s}
local bodies = {%(bodies)s}
local i = 0
request = function()
  i = i + 1
  if "%(kind)s" == "post" then
    return wrk.format("POST", "/api/predict", {["Content-Type"] = "application/json"}, bodies[i %% #bodies + 1])
  elseif "%(kind)s" == "get" then
    return wrk.format("GET", "/api/predict?name=" .. names[i %% #names + 1])
  end
  return wrk.format("GET", "/healthz")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50": %%f, "p99": %%f, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def names_to_send(count: int) -> list[str]:
    try:
        from benchmarks.common import data_dir, dataset_lines, distinct_names

        return distinct_names(dataset_lines(data_dir(None)), count)
    except SystemExit:
        return FALLBACK


def lua_script(kind: str, names: list[str], path: Path) -> Path:
    quote = json.dumps  # a JSON string is a valid Lua string here (ASCII, \\uXXXX escaped)
    bodies = [json.dumps(names[i : i + 100]) for i in range(0, min(len(names), 5000) - 99, 100)] or [json.dumps(names)]
    path.write_text(LUA % {"names": ", ".join(quote(urllib.parse.quote(n)) for n in names[:5000]),
                           "bodies": ", ".join(quote(b) for b in bodies), "kind": kind})
    return path


def start_server(workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CHARCLF_THREADS": "1"}
    command = [sys.executable, "-m", "charclf", "serve", "--port", str(port), "--workers", str(workers),
               "--max-concurrency", "1024"]
    process = subprocess.Popen(command, env=env, stderr=open(log, "w"), stdout=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit(f"the server did not come up within 120 s; see {log}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the worker processes), in MB."""
    total, pids = 0, [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            pids += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def drive(url: str, script: Path, connections: int, pid: int, seconds: float) -> tuple[dict, list[float]]:
    """wrk against `url` with `script` for `seconds`; (its summary, RSS samples in MB)."""
    samples, stop = [rss_mb(pid)], threading.Event()

    def sample():
        while not stop.wait(1.0):
            samples.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s",
                           str(script), url],
                          capture_output=True, text=True)
    stop.set()
    sampler.join()
    samples.append(rss_mb(pid))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"wrk failed: {done.stderr or done.stdout}")
    return json.loads(lines[-1]), samples


def run(args) -> int:
    if not shutil.which("wrk"):
        sys.exit("Error: this benchmark needs wrk (Debian: apt-get install wrk)")
    names, rows, failed = names_to_send(5000), [], False
    load_before = load_average()
    scenarios = [("get", "GET /api/predict, 1 name", args.requests, 1),
                 ("post", "POST /api/predict, 100 names", args.post_requests, 100),
                 ("health", "GET /healthz", args.requests // 5, 0)]
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            process, url = start_server(workers, Path(tmp) / f"serve-{workers}.log")
            try:
                for kind, what, limit, per_request in scenarios:
                    script = lua_script(kind, names, Path(tmp) / f"{kind}.lua")
                    # wrk runs for a time, not a count: a short run finds the rate, then one of about `limit`.
                    trial, _ = drive(url, script, args.connections, process.pid, 3)
                    seconds = max(5, limit / max(1, trial["requests"] / trial["seconds"]))
                    summary, rss = drive(url, script, args.connections, process.pid, seconds)
                    rate = summary["requests"] / summary["seconds"]
                    failed = failed or summary["errors"] > 0
                    rows.append([workers, what, f"{summary['requests']:,}", f"{rate:,.0f}", f"{summary['p50']:.1f}",
                                 f"{summary['p99']:.1f}", f"{rate * per_request:,.0f}" if per_request else "",
                                 f"{rss[0]:.0f} → {rss[-1]:.0f} (max {max(rss):.0f})", summary["errors"]])
                    print(" | ".join(map(str, rows[-1])), flush=True)
            finally:
                process.terminate()
                process.wait(timeout=60)
    table = md_table(["workers", "request", "requests", "requests/s", "p50 ms", "p99 ms", "names/s",
                      "server RSS MB: start → end", "errors"], rows, "llrrrrrlr")
    text = (f"Run {utc_now()} with `python {' '.join(sys.argv)}` on {os.cpu_count()} cores, wrk with 1 thread "
            f"and {args.connections} connections on the same cores as the server; the server with one model thread "
            f"per process and its JSON access log on; load average before: {load_before}, after: {load_average()}.\n\n"
            + "\n".join(table))
    print(text)
    if args.out:
        replace_between(args.out, BEGIN, END, text)
    return 1 if failed else 0
