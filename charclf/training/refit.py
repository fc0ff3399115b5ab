"""Refitting, a training aid: the network saved has trained on the validation names too.

The validation split (a tenth of the names) is held out to choose the epoch and to fit the
calibration temperature and the label sets. A network learns from every name it sees, so
keeping those names out of training costs accuracy. Refitting keeps both:

- the run trains on the training names and validates after every epoch, as without refitting
  (the first run): it chooses the epoch, fits the temperature and the label sets, and its
  validation scores are the ones the checkpoint reports;
- at the same time a second process (the refit, `python -m charclf.training.refit_worker`)
  trains the same network, with the same settings and seed, on the training and validation
  names together, keeping its weights (the moving average) at the end of every epoch;
- when both have finished, the refit's weights at the epoch the first run chose are saved, with
  the first run's temperature and label sets. The test split is untouched by both.

On the names dataset this added 0.66 points of test accuracy to the default (mean of split
seeds 0-2) and gained on all three backbones and seeds (docs/tuning.md). The two processes
share the threads the run was given (one each on a 2-core machine), so on two free cores the
run takes about as long as the first alone.

Not under torchrun (its processes already share the work), nor when the validation split has
fewer than MIN_CALIBRATION_NAMES names (too few to choose with). If the refit fails (it
diverges, or its process dies), the first run's own best weights are saved, with a warning."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any, Callable, Iterator

import torch

from charclf.errors import CharclfError
from charclf.names.text import DEFAULT_ALPHABET
from charclf.predict.calibration import MIN_CALIBRATION_NAMES


class RefitFailed(CharclfError):
    """The refit's process ended without its weights."""


def why_not(run) -> str | None:
    """Why `run` (a training.Run) is not refitted, or None when it is."""
    if not run.config.refit:
        return "off"
    if run.dist.enabled:
        return "not under torchrun"
    if run.source.sizes["val"] < MIN_CALIBRATION_NAMES:
        return f"the validation split has fewer than {MIN_CALIBRATION_NAMES} names"
    return None


@contextlib.contextmanager
def alongside(run, log: Callable[[str], None]) -> Iterator["Refit | None"]:
    """While the block trains `run`, the refit trains in its own process: yields it (None when
    `run` is not refitted). The threads torch was given are shared between the two processes."""
    reason = why_not(run)
    if reason is not None:
        if reason != "off":
            log(f"no refit on train + validation: {reason}")
        yield None
        return
    threads = torch.get_num_threads()
    share = max(1, threads // 2)
    torch.set_num_threads(share)
    log(f"refit: a second process trains the same network on train + validation "
        f"({run.source.sizes['train'] + run.source.sizes['val']} pairs), {share} thread(s) each")
    try:
        refit = Refit(job(run, share))
    except OSError as e:  # no process could be started (or it died at once): train as without refit
        log(f"warning: could not start the refit on train + validation ({e.strerror or e}); training on train alone")
        torch.set_num_threads(threads)
        yield None
        return
    try:
        yield refit
    finally:
        refit.stop()
        torch.set_num_threads(threads)


def job(run, threads: int) -> dict[str, Any]:
    """What the refit's process needs to train `run`'s network again (plain JSON)."""
    return {"data_dir": run.info["data_dir"], "alphabet": DEFAULT_ALPHABET, "fingerprint": run.source.fingerprint,
            "model_config": asdict(run.model_config), "train_config": asdict(run.config),
            "device": str(run.device), "threads": threads,
            "teacher": str(run.teachers.refit or run.teachers.first) if run.teachers else None}


class Refit:
    """The refit's process, started at once; `weights(epoch)` waits for it and collects them."""

    def __init__(self, job: dict[str, Any]):
        self.errors = tempfile.TemporaryFile()  # its stderr: a file, so that it can never block on a full pipe
        # Its stdin stays open while we live: when it closes (this process ended, even killed), the
        # refit stops too (see refit_worker.watch_parent).
        self.process = subprocess.Popen([sys.executable, "-m", "charclf.training.refit_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors)
        self.process.stdin.write(json.dumps(job).encode() + b"\n")
        self.process.stdin.flush()

    def weights(self, epoch: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Wait for the refit -> (its weights at the end of `epoch`, what to record of it: pairs,
        seconds of training, seconds waited for it here). RefitFailed when it has none."""
        waited = time.perf_counter()
        payload = self.process.stdout.read()
        code = self.process.wait()
        if code != 0 or not payload:
            self.errors.seek(0)
            lines = self.errors.read().decode(errors="replace").strip().splitlines()
            raise RefitFailed(lines[-1] if lines else f"its process ended with exit code {code}")
        result = torch.load(io.BytesIO(payload), weights_only=True)
        return result["snapshots"][epoch], {"trained_on": "train+val", "pairs": result["pairs"],
                                            "seconds": result["seconds"],
                                            "waited_seconds": time.perf_counter() - waited}

    def stop(self) -> None:
        """End the process if it still runs; free its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            with contextlib.suppress(OSError):
                stream.close()
