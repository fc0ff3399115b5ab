"""The refit's own process (`python -m charclf.training.refit_worker`, started by
charclf.training.refit): one JSON job line on stdin; the network trained again on train +
validation, its weights at the end of every epoch written to stdout with torch.save."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from charclf.training import distributed
from charclf.training.distill import Teachers
from charclf.training.run import Run


def train_again(job: dict[str, Any]) -> dict[str, Any]:
    """In the refit's process: train the job's network on train + validation -> its weights at
    the end of every epoch, the pairs it trained on and its seconds of training."""
    from charclf.config import TrainConfig, saved_model_config
    from charclf.data.batches import open_source, with_validation_in_training
    from charclf.data.extra import ExtraSpec
    from charclf.errors import DataError
    from charclf.training.loop import train_one_epoch

    torch.set_num_threads(job["threads"])
    config, model_config = TrainConfig(**job["train_config"]), saved_model_config(job["model_config"])
    data_dir = Path(job["data_dir"])
    source = open_source(data_dir, job["alphabet"], config.seed, extra=ExtraSpec.of(config))
    if source.fingerprint != job["fingerprint"]:
        raise DataError(f"the dataset at {data_dir} changed while training")
    source = with_validation_in_training(source)
    teachers = Teachers(Path(job["teacher"])) if job.get("teacher") else None
    single = distributed.Distributed.single(torch.device(job["device"]))
    run = Run(source, data_dir, model_config, config, None, single, teachers)
    snapshots, started = {}, time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        run.net.train()
        batches = source.epoch(epoch, config.batch_size, config.bucket, sampling=config.sampling)
        train_one_epoch(batches, run.step, run.steps_per_epoch)
        snapshots[epoch] = {name: value.detach().clone() for name, value in run.kept.state_dict().items()}
    return {"snapshots": snapshots, "pairs": source.sizes["train"], "seconds": time.perf_counter() - started}


def watch_parent() -> None:
    """End this process as soon as its parent's end of stdin closes (raw reads: no lock held)."""
    while os.read(0, 4096):
        pass
    os._exit(3)


def read_line(fd: int) -> bytes:
    """One line from a file descriptor, read unbuffered (nothing past it is consumed)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line


def main() -> int:
    """`python -m charclf.training.refit_worker`: one JSON job line on stdin -> torch.save'd result on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends us
    result_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the result
    job = json.loads(read_line(0))
    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        result = train_again(job)
    except Exception as e:  # one line for the parent's warning
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    buffer = io.BytesIO()
    torch.save(result, buffer)
    result_out.write(buffer.getvalue())
    result_out.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # at once: the watching thread still reads stdin
