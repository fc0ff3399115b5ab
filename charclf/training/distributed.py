"""Data-parallel training across processes started by torchrun (one process per GPU, or per
CPU slot): which rank this process is, its device, and the few collectives training needs.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process it
starts; without them everything here is a no-op for one process (`Distributed.single()`).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist

from charclf.errors import CharclfError, DeviceError
from charclf.models.model import pick_device

TIMEOUT_ENV = "CHARCLF_DIST_TIMEOUT"
# How long a collective waits for the other ranks before failing (instead of hanging forever
# when one of them died or stalls). Long enough for rank 0 to save a checkpoint or score a
# held-out split while the others wait.
DEFAULT_TIMEOUT_S = 600
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(CharclfError):
    """Another process of a data-parallel run failed, vanished or timed out."""


def under_torchrun() -> bool:
    return all(os.environ.get(name) for name in TORCHRUN_VARS)


def is_main_process() -> bool:
    """Rank 0 (or a run without torchrun): the process that prints, logs and writes files."""
    return not under_torchrun() or int(os.environ["RANK"]) == 0


def rank_prefix() -> str:
    """'[rank N] ' under torchrun with several processes (which one an error line comes from)."""
    return f"[rank {os.environ['RANK']}] " if under_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 else ""


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run. rank 0 is the main process."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device) -> "Distributed":
        return cls(0, 1, device)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums of `values` over all ranks (the same list back on every rank)."""
        if not self.enabled:
            return values
        # float64 on the CPU for gloo, on the GPU for nccl: sums of losses stay exact enough.
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        with collective("summing metrics"):
            dist.all_reduce(tensor)
        return tensor.tolist()

    def gather_objects(self, value) -> list:
        """[value of rank 0, value of rank 1, ...] on every rank (small picklable values)."""
        if not self.enabled:
            return [value]
        values = [None] * self.world_size
        with collective("comparing results"):
            dist.all_gather_object(values, value)
        return values

    def collectives(self, what: str):
        """Around code that runs collectives of its own (DDP's backward): failures become one line."""
        return collective(what) if self.enabled else nullcontext()


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """A short sha256 of a state_dict's names and exact bytes: equal digests, equal weights."""
    h = hashlib.sha256()
    for key, tensor in state_dict.items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise DistributedError(f"${TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return seconds


@contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed collective (a peer died, the network broke, a timeout) into one line."""
    try:
        yield
    except RuntimeError as e:  # gloo and nccl raise plain RuntimeErrors, as torch does for other faults
        peers = ("gloo", "nccl", "connection", "timed out", "timeout", "processgroup", "c10d")
        if not isinstance(e, dist.DistError) and not any(word in str(e).lower() for word in peers):
            raise
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise DistributedError(
            f"lost the other processes while {what} (one of them failed, "
            f"was killed or timed out after {timeout_seconds():g} s): {reason}"
        ) from None


@contextmanager
def session(device: str | torch.device = "auto") -> Iterator[Distributed]:
    """Join the process group when started by torchrun (and leave it at the end), else one process.

    Backend: nccl when this rank trains on CUDA (each rank on cuda:LOCAL_RANK), gloo on the CPU.
    """
    if not under_torchrun() or dist.is_initialized():
        if dist.is_initialized():  # joined by the caller: use its group as it is
            yield Distributed(dist.get_rank(), dist.get_world_size(), _rank_device(device))
        else:
            yield Distributed.single(device if isinstance(device, torch.device) else pick_device(device))
        return
    rank_device = _rank_device(device)
    backend = "nccl" if rank_device.type == "cuda" else "gloo"
    if rank_device.type == "cuda":
        torch.cuda.set_device(rank_device)
    with collective("starting (init_process_group)"):
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds()))
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), rank_device)
    finally:
        dist.destroy_process_group()


def _rank_device(device: str | torch.device) -> torch.device:
    """'auto' or 'cuda' under torchrun: cuda:LOCAL_RANK (each process its own GPU); else as asked."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    chosen = device if isinstance(device, torch.device) else pick_device(str(device))
    if chosen.type == "cuda" and chosen.index is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DeviceError(f"--device {chosen} would put every process on one GPU: under torchrun give --device "
                          "cuda or auto, and each process takes cuda:LOCAL_RANK")
    if chosen.type == "cuda" and chosen.index is None:
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"local rank {local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc_per_node)"
            )
        chosen = torch.device("cuda", local_rank)
    return chosen
