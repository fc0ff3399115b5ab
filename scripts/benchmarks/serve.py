"""Load test of `charclf serve` on loopback: requests/s and latency under many concurrent clients.

It starts a server and sends it a fixed number of requests from many concurrent clients
(httpx.AsyncClient), and reports requests/s and latency percentiles.

Bounded on purpose: 127.0.0.1 only, at most 100,000 requests and 1,000 clients, and it stops
by itself. Exit code 1 when any request failed.

    python scripts/benchmark.py serve                  # 200 clients, 20,000 requests, GET /api/predict
    python scripts/benchmark.py serve --clients 50 --requests 5000 --workers 2
    python scripts/benchmark.py serve --out docs/benchmarks.md   # also (re)write its section there
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
import sys
import time

import httpx

from benchmarks.common import replace_section, utc_now

SECTION = "## Serving under load"
NAMES = ["Hinton", "Satoshi", "Rossi", "Nguyen", "Müller", "Иванов", "O'Brien", "Papadopoulos", "Kowalski",
         "Dvořák", "Fernandes", "van der Berg", "MacDonald", "Kim", "Zhang", "Haddad", "Dubois", "Smith"]


def start_server(workers: int | None, max_batch: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "charclf", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] if workers else []
    command += ["--max-batch", str(max_batch)] if max_batch else []
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the server did not come up within 60 s")


async def hammer(url: str, path: str, clients: int, total: int) -> tuple[list[float], int, float]:
    """`clients` tasks share `total` requests; returns (latencies in seconds, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < total:
            name = NAMES[issued % len(NAMES)]
            issued += 1
            start = time.perf_counter()
            try:
                answer = await client.get(path, params={"name": name})
                ok = answer.status_code == 200 and answer.json()["name"] == name
            except (httpx.HTTPError, ValueError, KeyError):
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await client.get("/healthz")
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        return latencies, errors, time.perf_counter() - start


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def section(lines: list[str]) -> str:
    """This run as the file's '## Serving under load' section."""
    return (f"{SECTION}\n\nRun {utc_now()} with `python {' '.join(sys.argv)}` (Python {platform.python_version()}): "
            "it starts `charclf serve` with the shipped model on 127.0.0.1 and sends the requests from one Python "
            "process (httpx.AsyncClient), client and server on the same machine, which is a shared 2-core box busy "
            "with other people's work, so the numbers are modest and noisy.\n\n```\n" + "\n".join(lines) + "\n```\n")


def run(args) -> int:
    load_before = os.getloadavg()
    process, url = start_server(args.workers, args.max_batch)
    try:
        latencies, errors, seconds = asyncio.run(hammer(url, args.path, args.clients, args.requests))
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies.sort()
    lines = [f"GET {args.path}: {len(latencies)} requests from {args.clients} concurrent clients in {seconds:.1f} s "
             f"on {os.cpu_count()} cores (server: --workers {args.workers or 'default'}, "
             f"--max-batch {args.max_batch or 'default'})",
             f"{len(latencies) / seconds:.0f} requests/s; latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
             f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; errors: {errors}",
             "load average (1, 5, 15 min) before: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, {:.2f}".format(
                 *load_before, *os.getloadavg())]
    print("\n".join(lines))
    if args.out:
        replace_section(args.out, SECTION, section(lines))
    return 1 if errors else 0
