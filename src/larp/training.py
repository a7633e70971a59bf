"""Pieces every training stage shares: LR schedule, resumable checkpoints, non-finite loss guard, step timing.

Checkpoints live in a work folder outside the declared outputs (Snakemake and DVC delete declared outputs before a
job runs; workflow-notes.md §0.7), are written atomically, and carry a fingerprint of the configuration so a run
never resumes from a checkpoint of a different configuration.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .io import atomic_file


class NonFiniteLoss(FloatingPointError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


def lr_multiplier(step: int, total: int, warmup: int, min_mult: float) -> float:
    """Linear warm-up from ``min_mult`` to 1 over ``warmup`` steps, then cosine decay to ``min_mult`` at ``total``.

    The official trainers' step-wise "warm-up cosine" schedule (facts §4 "Tokenizer optimizer and schedule", §5).
    """
    if warmup > 0 and step < warmup:
        return min_mult + (1.0 - min_mult) * step / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_mult + (1.0 - min_mult) * 0.5 * (1.0 + math.cos(math.pi * progress))


def fingerprint(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_finite(losses: Mapping[str, torch.Tensor], step: int, checkpoint: Path | None) -> None:
    bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v.detach()).all()}
    if bad:
        kept = f"the last good checkpoint {checkpoint} is kept" if checkpoint and checkpoint.exists() else (
            "no checkpoint had been written yet")
        raise NonFiniteLoss(
            f"non-finite loss at step {step}: {bad}; {kept}. Lower the learning rate or check the input data, then "
            "re-run: training resumes from the last checkpoint."
        )


class Checkpointer:
    """One resumable checkpoint file ``<work>/checkpoint.pt`` for a configuration fingerprint."""

    def __init__(self, work_dir: str | Path, cfg: Mapping[str, Any]):
        self.dir = Path(work_dir)
        self.path = self.dir / "checkpoint.pt"
        self.fp = fingerprint(cfg)

    def save(self, step: int, state: Mapping[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        payload = {"step": step, "fingerprint": self.fp, "rng_cpu": torch.get_rng_state(), **state}
        if torch.cuda.is_available():
            payload["rng_cuda"] = torch.cuda.get_rng_state_all()
        with atomic_file(self.path) as tmp:
            torch.save(payload, tmp)

    def save_objects(self, step: int, objects: Mapping[str, Any], is_main: bool = True) -> None:
        """Checkpoint the ``state_dict()`` of each named object (model, optimisers, ...); rank 0 only writes."""
        if is_main:
            self.save(step, {name: obj.state_dict() for name, obj in objects.items()})

    def end_of_step(self, done: int, total: int, every: int, objects: Mapping[str, Any], is_main: bool = True,
                    stop_after: int | None = None) -> bool:
        """Checkpoint after step ``done`` when due (every ``every`` steps, at the last step, or at ``stop_after``,
        which ends the process's work early to test resumption), at most once; True when the loop must stop."""
        stop = stop_after is not None and done >= stop_after
        if stop or done % every == 0 or done == total:
            self.save_objects(done, objects, is_main)
        return stop

    def resume(self, objects: Mapping[str, Any], stage: str, is_main: bool = True) -> int:
        """Load every named object's state from the checkpoint (and the RNG); the step to continue from, or 0."""
        state = self.load()
        if state is None:
            return 0
        for name, obj in objects.items():
            obj.load_state_dict(state[name])
        if is_main:
            print(f"[{stage}] resuming from {self.path} at step {state['step']}", flush=True)
        return int(state["step"])

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when absent or written for another configuration (then training starts over)."""
        if not self.path.is_file():
            return None
        payload = torch.load(self.path, map_location="cpu", weights_only=False)
        if payload.get("fingerprint") != self.fp:
            print(f"[checkpoint] {self.path} belongs to another configuration; starting from scratch", flush=True)
            return None
        torch.set_rng_state(payload["rng_cpu"])
        if "rng_cuda" in payload and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["rng_cuda"])
        return payload


class Throughput:
    """Items per second over the steps since the last call to :meth:`rate`."""

    def __init__(self) -> None:
        self.t0, self.items = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.items += n

    def rate(self) -> float:
        dt = time.perf_counter() - self.t0
        r = self.items / dt if dt > 0 else 0.0
        self.t0, self.items = time.perf_counter(), 0
        return r


def log_line(stage: str, step: int, total: int, metrics: Mapping[str, float], keys: tuple[str, ...]) -> None:
    """One plain progress line for logs (Snakemake/DVC write stderr to files, where a progress bar is noise)."""
    shown = " ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)
    print(f"[{stage}] step {step}/{total} {shown}", flush=True)


def all_mean(values: Mapping[str, float], dist: Any, device: str) -> dict[str, float]:
    """Average logged scalars over the ranks (every rank logs at the same steps), so rank 0 reports the global mean."""
    if dist.world == 1 or not values:
        return dict(values)
    import torch.distributed as tdist

    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return {k: float(v) / dist.world for k, v in zip(keys, t.tolist())}


class RunningMeans:
    """Means of logged scalars since the last :meth:`mean`; :attr:`last` keeps the most recent result."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1

    def mean(self) -> dict[str, float]:
        self.last = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        return self.last
