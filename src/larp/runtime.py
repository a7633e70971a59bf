"""Process-level set-up shared by all stages: threads, seeds, device, distributed, progress bars, provenance."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def set_threads(n: int | None) -> int:
    """Use ``n`` CPU threads in torch and the BLAS libraries (Snakemake ``threads:`` -> ``--threads``)."""
    import torch

    n = max(1, int(n or os.cpu_count() or 1))
    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stage_seed(params: Mapping[str, Any], section: Mapping[str, Any]) -> int:
    """A stage's seed: its section's ``seed`` (set per run by the table2 sweep), else the global ``run.seed``."""
    own = section.get("seed")
    return int(params["run"]["seed"] if own is None else own)


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16): there a bf16 matmul is
    several times faster than fp32. Elsewhere (e.g. AVX2-only CPUs) oneDNN emulates bf16 and it is far slower, so
    bf16 autocast must stay off (benchmarks/bench_bf16.py measures both)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def autocast_for(device: str, cpu_bf16: str | bool = "auto") -> torch.autocast:
    """The training autocast context: bf16 on CUDA; on CPU bf16 when ``cpu_bf16`` is true, or "auto" and the CPU
    has bf16 matrix units (:func:`cpu_has_fast_bf16`); otherwise fp32 (a disabled autocast)."""
    import torch

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    on = cpu_has_fast_bf16() if cpu_bf16 == "auto" else bool(cpu_bf16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)


def resolve_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device is 'cuda' but no CUDA device is visible; set run.device: auto or cpu")
    return name


@dataclass(frozen=True)
class Dist:
    """Rank information; single process when not launched by torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Initialise torch.distributed when launched by ``torchrun`` (gloo on CPU, NCCL on GPU)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local)


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any):
    """A tqdm progress bar on stderr; quiet when not attached to a terminal unless LARP_PROGRESS=1."""
    from tqdm.auto import tqdm

    disable = kwargs.pop("disable", None)
    if disable is None:
        disable = not (sys.stderr.isatty() or os.environ.get("LARP_PROGRESS") == "1")
    return tqdm(iterable, disable=disable, dynamic_ncols=True, mininterval=1.0, **kwargs)


def git_commit(cwd: str | Path | None = None) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout
        return sha.strip() + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
