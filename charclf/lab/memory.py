"""`charclf lab memory`: the plain RNN, the LSTM and the GRU trained alike on the long-dependency
task (charclf.lab.task) at several distances; each one's test accuracy, and the gradient that
reaches each letter at the start and after training."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from typing import Callable

import torch
from torch import nn

from charclf.lab.gradients import gradient_by_step
from charclf.lab.settings import MemoryConfig
from charclf.lab.task import memory_batch
from charclf.lab.textbook import TextbookNet


def run_memory(config: MemoryConfig, progress: Callable[[dict], None] | None = None, threads: int = 1) -> dict:
    """Every backbone at every distance -> {"config", "chance", "runs": [one row per (distance,
    arch): accuracy, steps, seconds, gradients], "seconds"}; `progress` is given each row when done.
    torch runs on `threads` threads meanwhile (as `charclf lab memory --threads`, default 1: the
    networks are small, and more threads mostly wait for each other)."""
    started = time.perf_counter()
    runs = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for distance in config.distances:
            for arch in config.archs:
                row = train_one(config, arch, distance)
                runs.append(row)
                if progress:
                    progress(row)
    finally:
        torch.set_num_threads(before)
    return {"config": asdict(config), "chance": config.chance, "runs": runs,
            "seconds": round(time.perf_counter() - started, 1)}


def train_one(config: MemoryConfig, arch: str, distance: int) -> dict:
    """One backbone at one distance: trained until it reaches config.target on a validation set or
    for config.steps steps. The weights, the training sequences, the validation and test sequences
    all come from config.seed, so every run of the same settings gives the same numbers."""
    started = time.perf_counter()
    shape = (distance, config.labels, config.letters)
    test = torch.Generator().manual_seed(config.seed + 1)  # the same test sequences for every backbone
    test_x, test_y = memory_batch(test, config.test_size, *shape)
    check_x, check_y = memory_batch(test, config.test_size, *shape)
    with torch.random.fork_rng(devices=[]):  # the weights from the seed, the caller's generator untouched
        torch.manual_seed(config.seed)
        model = TextbookNet(arch, config.letters, config.hidden_size, config.labels, config.gate_bias)
    before = gradient_by_step(model, test_x[:config.gradient_size], test_y[:config.gradient_size])
    batches = torch.Generator().manual_seed(config.seed)
    with _flushed_denormals():
        steps = fit(model, config, lambda: memory_batch(batches, config.batch_size, *shape), (check_x, check_y))
    return {"arch": arch, "distance": distance, "accuracy": round(accuracy(model, test_x, test_y), 4),
            "steps": steps, "seconds": round(time.perf_counter() - started, 2),
            "gradient_before": before,
            "gradient_after": gradient_by_step(model, test_x[:config.gradient_size], test_y[:config.gradient_size])}


def fit(model: nn.Module, config: MemoryConfig, batch, check: tuple[torch.Tensor, torch.Tensor]) -> int:
    """Adam on batch() until the model answers config.target of `check` (tried every
    config.check_every steps) or config.steps steps; -> the steps taken."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = 0
    while steps < config.steps:
        x, y = batch()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        # A plain RNN's gradient can also explode through time: clipping keeps one step bounded.
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        optimizer.step()
        steps += 1
        if steps % config.check_every == 0 and accuracy(model, *check) >= config.target:
            break
    return steps


@torch.no_grad()
def accuracy(model: nn.Module, sequences: torch.Tensor, answers: torch.Tensor) -> float:
    model.eval()
    right = (model(sequences).argmax(dim=1) == answers).float().mean().item()
    model.train()
    return right


@contextlib.contextmanager
def _flushed_denormals():
    """Numbers too small for float32's normal range are read as 0 while the lab runs: a vanished
    gradient is full of them, and on many CPUs each costs a hundred times an ordinary number."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
