"""Pieces every training stage shares: LR schedule, resumable checkpoints, non-finite loss guard, step timing.

Checkpoints live in a work folder outside the declared outputs (Snakemake and DVC delete declared outputs before a
job runs; docs/tooling-notes.md §2), are written atomically, and carry a fingerprint of the configuration so a run
never resumes from a checkpoint of a different configuration. They are read with ``torch.load(weights_only=True)``
(tensors and plain containers only): a planted or foreign pickle is refused without running any of it. The previous
checkpoint is kept beside the current one (``checkpoint.prev.pt``) so that a non-finite loss right after a checkpoint
can fall back to one written before the weights went bad.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import NonFiniteLoss, StageError
from .io import atomic_file

# Set to 1 to resume from a checkpoint whose configuration differs only in learning rates (keys named "lr"), e.g.
# after a non-finite loss; without it such a change trains from scratch.
RESUME_CHANGED_LR = "LARP_RESUME_CHANGED_LR"
PREVIOUS = "checkpoint.prev.pt"


def lr_multiplier(step: int, total: int, warmup: int, min_mult: float) -> float:
    """Linear warm-up from ``min_mult`` to 1 over ``warmup`` steps, then cosine decay to ``min_mult`` at ``total``.

    The official trainers' step-wise "warm-up cosine" schedule (facts §4 "Tokenizer optimizer and schedule", §5).
    Not torch.optim.lr_scheduler: its CosineAnnealingLR has no warm-up from ``min_mult`` and LambdaLR would still
    need this function; a pure function of the step also resumes from a checkpoint with no scheduler state.
    """
    if warmup > 0 and step < warmup:
        return min_mult + (1.0 - min_mult) * step / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_mult + (1.0 - min_mult) * 0.5 * (1.0 + math.cos(math.pi * progress))


def fingerprint(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _without_lr(obj: Any) -> Any:
    """``obj`` with every mapping key named ``lr`` removed, at any depth (the fingerprint a changed lr keeps)."""
    if isinstance(obj, Mapping):
        return {k: _without_lr(v) for k, v in obj.items() if k != "lr"}
    return obj


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickled code."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, garbage, or a pickle that needs code to load: all refused the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"{path} is not a readable training checkpoint ({type(exc).__name__}: {reason[:200]}); nothing in it was "
            f"run. It is a resumable state outside the declared outputs: delete it to train this stage from scratch "
            f"(rm {shlex.quote(str(path))}) and re-run.") from None
    if not isinstance(payload, dict) or "step" not in payload or "fingerprint" not in payload:
        raise StageError(f"{path} is not a checkpoint written by this pipeline (no step/fingerprint); delete it "
                         f"(rm {shlex.quote(str(path))}) and re-run to train from scratch")
    return payload


def _keep_checkpoint_before(checkpoint: Path, step: int) -> str:
    """Make ``checkpoint`` one written before step ``step`` (the weights that step used may be the bad ones):
    fall back to the previous checkpoint, or drop it; say what is kept. Rank 0 only (it alone writes)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return f"rank 0 keeps a checkpoint from before step {step} in {checkpoint.parent}"
    prev = checkpoint.with_name(PREVIOUS)
    if checkpoint.is_file() and int(_read_checkpoint(checkpoint)["step"]) >= step:
        # written after the update that produced the weights of this step: resuming from it repeats the failure
        if prev.is_file() and int(_read_checkpoint(prev)["step"]) < step:
            os.replace(prev, checkpoint)
        else:
            checkpoint.unlink()
    if checkpoint.is_file():
        kept = int(_read_checkpoint(checkpoint)["step"])
        return f"the checkpoint {checkpoint} of step {kept} (before the non-finite step) is kept"
    return "no checkpoint from before that step exists, so a re-run trains from scratch"


def check_finite(losses: Mapping[str, torch.Tensor], step: int, checkpoint: Path | None) -> None:
    bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v.detach()).all()}
    if bad:
        kept = _keep_checkpoint_before(checkpoint, step) if checkpoint else "no checkpoint had been written yet"
        raise NonFiniteLoss(
            f"non-finite loss at step {step}: {bad}; {kept}. Either check the input data and re-run unchanged, or "
            f"lower the learning rate (its `lr` key) and re-run with {RESUME_CHANGED_LR}=1 in the environment to "
            "resume from that checkpoint (without it a changed lr trains from scratch)."
        )


class Checkpointer:
    """One resumable checkpoint file ``<work>/checkpoint.pt`` for a configuration fingerprint."""

    def __init__(self, work_dir: str | Path, cfg: Mapping[str, Any]):
        self.dir = Path(work_dir)
        self.path = self.dir / "checkpoint.pt"
        self.prev = self.dir / PREVIOUS
        self.fp = fingerprint(cfg)
        self.fp_without_lr = fingerprint(_without_lr(cfg))

    def save(self, step: int, state: Mapping[str, Any]) -> None:
        """Write the checkpoint atomically; the one it replaces becomes ``checkpoint.prev.pt``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        payload = {"step": step, "fingerprint": self.fp, "fingerprint_without_lr": self.fp_without_lr,
                   "rng_cpu": torch.get_rng_state(), **state}
        if torch.cuda.is_available():
            payload["rng_cuda"] = torch.cuda.get_rng_state_all()
        with atomic_file(self.path) as tmp:
            torch.save(payload, tmp)
            if self.path.is_file():
                os.replace(self.path, self.prev)  # a kill before the next rename leaves prev only: load() uses it

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
            if name not in state:
                if getattr(obj, "checkpoint_optional", False):  # absent from checkpoints of older versions
                    continue
                raise StageError(f"{self.path} holds no {name!r} state; delete it (rm {shlex.quote(str(self.path))}) "
                                 "and re-run to train from scratch")
            obj.load_state_dict(state[name])
        if is_main:
            print(f"[{stage}] resuming from {self.path} at step {state['step']}", flush=True)
        return int(state["step"])

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when absent or written for another configuration (then training starts over).

        A checkpoint of a configuration that differs only in learning rates is used when the environment sets
        ``LARP_RESUME_CHANGED_LR=1``. An unreadable file stops with :class:`~larp.errors.StageError` naming it.
        """
        path = self.path if self.path.is_file() else self.prev  # prev alone: killed between save()'s two renames
        if not path.is_file():
            return None
        payload = _read_checkpoint(path)
        if payload.get("fingerprint") != self.fp:
            relaxed = os.environ.get(RESUME_CHANGED_LR) == "1"
            if relaxed and payload.get("fingerprint_without_lr") == self.fp_without_lr:
                print(f"[checkpoint] {path}: resuming with a changed learning rate ({RESUME_CHANGED_LR}=1)",
                      flush=True)
            else:
                hint = "" if relaxed else f" (if only the lr changed, {RESUME_CHANGED_LR}=1 resumes from it)"
                print(f"[checkpoint] {path} belongs to another configuration; starting from scratch{hint}", flush=True)
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


_LOG_START: dict[str, tuple[float, int]] = {}  # stage -> (time, step) of its first log line in this process


def log_line(stage: str, step: int, total: int, metrics: Mapping[str, float], keys: tuple[str, ...]) -> None:
    """One plain progress line for logs (Snakemake/DVC write stderr to files, where a progress bar is noise), with
    the rate and ETA since this process's first line (workflow/tools/progress.py shows the latest in the terminal)."""
    import time

    shown = " ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)
    t0, s0 = _LOG_START.setdefault(stage, (time.monotonic(), step))
    rate = (step - s0) / max(time.monotonic() - t0, 1e-9)
    timing = f" | {rate:.2f} steps/s, ETA {round((total - step) / rate)} s" if step > s0 and rate > 0 else ""
    print(f"[{stage}] step {step}/{total} {shown}{timing}", flush=True)


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
    """Means of logged scalars since the last :meth:`mean`; :attr:`last` keeps the most recent result.

    Checkpointed with the model (``state_dict``), so a resumed run reports the same window means as an
    uninterrupted one, also when it resumes at the last step and trains no further.
    """

    checkpoint_optional = True  # checkpoints of older versions lack it

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

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {"sums": dict(self.sums), "counts": dict(self.counts), "last": dict(self.last)}

    def load_state_dict(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        self.sums, self.counts, self.last = dict(state["sums"]), dict(state["counts"]), dict(state["last"])
