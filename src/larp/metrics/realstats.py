"""Cached real-data feature statistics for the Fréchet distances (rFVD, gFVD, frame-prediction FVD).

Real statistics depend only on the real clips and the detector, so they are computed once and reused by every
variant scored against the same clips (e.g. all class-conditional generators of one dataset), as StyleGAN-V caches
them by a hash of all arguments (universome/stylegan-v `src/metrics/metric_utils.py`).

The cache key (:class:`RealStatsKey`) holds everything that changes the statistics:

- detector: its name (``i3d``, ``clf-<dataset>``) and the hash of its weights (I3D: the git blob SHA-1 of the
  TorchScript file; classifier: the SHA-256 of its ``model.safetensors``);
- data: dataset name, a fingerprint of the clip store split (:func:`store_fingerprint`), the split, and a digest
  of the exact (video, start) windows;
- protocol: its tag (``rfvd`` / ``gfvd`` / ``fp-fvd<res>``), N, the sampling seed, frames per clip, and the
  resolution and resize applied before the detector.

A key maps to ``<cache_dir>/<protocol>-<dataset>-<split>-<detector>-n<N>-<digest>.npz`` (a FeatureStats file) with
the key itself beside it as ``.json`` for people. Both are written atomically (larp.io), so concurrent stages that
compute the same statistics never see a partial file; the last rename wins with identical content.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from larp.data.clips import ClipStore
from larp.io import read_json, write_json
from larp.metrics.detectors import Detector
from larp.metrics.fvd import FeatureStats

FINGERPRINT_FRAMES = 32  # evenly spaced stored frames hashed into a store fingerprint (content, not just names)


@dataclass(frozen=True)
class RealStatsKey:
    """Everything that determines a set of real-clip feature statistics (see the module docstring)."""

    detector: str  # detector name, e.g. "i3d" or "clf-synthetic"
    detector_hash: str  # I3D git blob SHA-1 or classifier weights SHA-256
    dataset: str  # dataset name in params.yaml
    store: str  # store_fingerprint() of the split
    split: str  # "train" | "test"
    protocol: str  # "rfvd" | "gfvd" | "fp-fvd64" ...
    n: int  # number of real clips
    seed: int  # seed of the window sampling (clips.rfvd_seed or clips.gfvd_seed)
    frames: int  # frames per clip fed to the detector
    resolution: int  # frame size fed to the detector (after `resize`)
    resize: str  # "none" or e.g. "bilinear-antialias" (frames resized to `resolution` before the detector)
    windows: str  # windows_digest() of the (video, start) list

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of every field."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def filename(self) -> str:
        return f"{self.protocol}-{self.dataset}-{self.split}-{self.detector}-n{self.n}-{self.digest()}.npz"


def windows_digest(windows: Sequence[tuple[int, int]] | np.ndarray) -> str:
    """SHA-256 (16 hex digits) of a (video, start) window list, as int64 pairs."""
    arr = np.ascontiguousarray(np.asarray(windows, dtype=np.int64).reshape(-1, 2))
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]


def store_fingerprint(store: ClipStore, frames: int = FINGERPRINT_FRAMES) -> str:
    """SHA-256 (16 hex digits) of one split of a clip store: its manifest, class list, extraction parameters and
    the bytes of ``frames`` evenly spaced stored frames (first frame of evenly spaced videos), so a re-extracted
    store with the same file names but other pixels gets another fingerprint without hashing every frame."""
    h = hashlib.sha256()
    h.update((store.root / store.split / "manifest.csv").read_bytes())
    h.update(json.dumps(store.class_names).encode())
    h.update(json.dumps(read_json(store.root / "summary.json").get("params", {}), sort_keys=True).encode())
    for i in np.unique(np.linspace(0, len(store) - 1, num=min(frames, len(store))).round().astype(int)):
        h.update(store.read(int(i), 0, 1).tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def feature_stats(detector: Detector, batches: Iterable[Tensor]) -> FeatureStats:
    """FeatureStats of ``detector`` features over video batches (B, 3, T, H, W) in [0, 1]."""
    stats = FeatureStats(detector.feature_dim)
    for videos in batches:
        stats.update(detector.features(videos))
    return stats


def cache_path(cache_dir: str | os.PathLike, key: RealStatsKey) -> Path:
    return Path(cache_dir) / key.filename()


def load_real_stats(cache_dir: str | os.PathLike, key: RealStatsKey) -> FeatureStats | None:
    """The cached statistics for ``key``, or None when absent."""
    path = cache_path(cache_dir, key)
    return FeatureStats.load(path) if path.is_file() else None


def save_real_stats(cache_dir: str | os.PathLike, key: RealStatsKey, stats: FeatureStats) -> Path:
    """Write ``stats`` for ``key`` (atomically), with the key as JSON beside it; returns the .npz path."""
    if stats.n != key.n:
        raise ValueError(f"save_real_stats: the key says N = {key.n} real clips but the stats hold {stats.n}")
    path = cache_path(cache_dir, key)
    write_json(path.with_suffix(".json"), dataclasses.asdict(key))
    stats.save(path)
    return path


def cached_real_stats(cache_dir: str | os.PathLike, key: RealStatsKey,
                      compute: Callable[[], FeatureStats]) -> tuple[FeatureStats, bool]:
    """``(stats, was_cached)``: the cached statistics for ``key``, or ``compute()`` saved under ``key``."""
    cached = load_real_stats(cache_dir, key)
    if cached is not None:
        return cached, True
    stats = compute()
    save_real_stats(cache_dir, key, stats)
    return stats, False
