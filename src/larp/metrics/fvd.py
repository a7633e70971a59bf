"""Fréchet Video Distance engine: streaming float64 feature statistics and the Fréchet distance.

Reproduces the statistics and distance of the official LARP FVD code (hywang66/LARP `utils/fvd/fvd.py`,
summarised in docs/official-code-facts.md §6), which follows StyleGAN-V (`src/metrics/metric_utils.py`
FeatureStats, `src/metrics/frechet_video_distance.py`) and the original FVD (Unterthiner et al., 2018):

    FVD = ||mu_a - mu_b||^2 + tr(S_a + S_b) - 2 tr( sqrt( sqrt(S_a) S_b sqrt(S_a) ) )

Feature extraction lives in `larp.metrics.detectors`; this module only sees (N, D) feature matrices.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from torch import Tensor

from larp.io import atomic_file

_STATS_FORMAT = 1  # version of the .npz layout written by FeatureStats.save


class FeatureStats:
    """Streaming first and second moments of (N, dim) features, kept as float64 sums.

    As the official FeatureStats (docs/official-code-facts.md §6 "Statistics"): running sums Σx and Σxxᵀ over N
    items, mean = Σx/N and the *biased* covariance Σxxᵀ/N - mean meanᵀ. Merging adds sums and counts, so stats
    computed on shards combine into the stats of the union (up to float64 summation order).
    """

    def __init__(self, dim: int):
        if dim <= 0:
            raise ValueError(f"FeatureStats: expected a positive feature dim but found {dim}")
        self.dim = dim
        self.n = 0
        self.sum = np.zeros(dim, dtype=np.float64)  # (D,)
        self.sum_sq = np.zeros((dim, dim), dtype=np.float64)  # (D, D)

    def update(self, feats: Tensor | np.ndarray) -> None:
        """Add a batch of features (N, dim); converted to float64 before accumulation."""
        if isinstance(feats, Tensor):
            feats = feats.detach().to("cpu", torch.float64).numpy()
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"FeatureStats.update: expected features of shape (N, {self.dim}) but found {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("FeatureStats.update: features contain NaN or inf; check the detector input range")
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_sq += x.T @ x

    def _require_items(self) -> None:
        if self.n == 0:
            raise ValueError("FeatureStats: no features were added; call update() before mean()/cov()")

    def mean(self) -> np.ndarray:
        """Feature mean, (D,) float64."""
        self._require_items()
        return self.sum / self.n

    def cov(self) -> np.ndarray:
        """Biased covariance (divide by N, as the official code), (D, D) float64."""
        mu = self.mean()
        return self.sum_sq / self.n - np.outer(mu, mu)

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Stats of the union of both feature sets (exact: sums and counts add)."""
        if not isinstance(other, FeatureStats) or other.dim != self.dim:
            found = other.dim if isinstance(other, FeatureStats) else type(other).__name__
            raise ValueError(f"FeatureStats.merge: expected FeatureStats of dim {self.dim} but found {found}")
        out = FeatureStats(self.dim)
        out.n = self.n + other.n
        out.sum = self.sum + other.sum
        out.sum_sq = self.sum_sq + other.sum_sq
        return out

    __add__ = merge

    def save(self, path: str | os.PathLike) -> None:
        """Write the sums to `path` (.npz) atomically (larp.io.atomic_file: temp sibling, then os.replace)."""
        with atomic_file(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no suffix
            np.savez(f, format=_STATS_FORMAT, n=self.n, sum=self.sum, sum_sq=self.sum_sq)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read stats written by `save`."""
        with np.load(path) as data:
            keys = {"format", "n", "sum", "sum_sq"}
            if not keys <= set(data.files) or int(data["format"]) != _STATS_FORMAT:
                raise ValueError(
                    f"FeatureStats.load: {path} is not a FeatureStats file of format {_STATS_FORMAT} "
                    f"(expected keys {sorted(keys)} but found {sorted(data.files)}); recompute the stats"
                )
            stats = cls(int(data["sum"].shape[0]))
            stats.n = int(data["n"])
            stats.sum = data["sum"].astype(np.float64)
            stats.sum_sq = data["sum_sq"].astype(np.float64)
        return stats


def _clamp_psd(w: np.ndarray, what: str, ref: float = 0.0) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix with tiny negative ones (rounding) clamped to 0.

    ``ref`` is the magnitude rounding is relative to: a covariance computed as E[xxᵀ] − μμᵀ carries errors of order
    ε·|μ|², so when every feature vector is identical (a collapsed generator, an untrained decoder) the matrix is
    pure rounding noise of either sign and must count as 0, not as an error."""
    scale = max(float(np.abs(w).max()), ref, 1e-300)
    if w.min() < -1e-6 * scale:
        raise ValueError(
            f"frechet_distance: {what} is not positive semi-definite (eigenvalue {w.min():.3g}, largest "
            f"{scale:.3g}); expected a covariance matrix"
        )
    return np.clip(w, 0.0, None)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ||mu1-mu2||^2 + tr(S1 + S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1))) (facts §6 "Statistics"). sqrt(S1) comes from a
    symmetric eigendecomposition; the trace of the outer root is the sum of the square roots of the
    eigenvalues of the symmetric PSD matrix sqrt(S1) S2 sqrt(S1). Unlike the official SVD (which leaves
    singular values < 1e-10 un-rooted, a tf-gan quirk), tiny negative eigenvalues are clamped to 0, so the
    result is exact for closed forms and symmetric up to rounding.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    for name, arr, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"frechet_distance: expected {name} of shape {shape} but found {arr.shape}")
    ref = max(float(np.abs(sigma1).max()), float(np.abs(sigma2).max()), float(mu1 @ mu1) / d, float(mu2 @ mu2) / d)
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt1 = (v1 * np.sqrt(_clamp_psd(w1, "sigma1", ref))) @ v1.T  # (D, D) = V diag(sqrt w) Vᵀ
    mid = sqrt1 @ sigma2 @ sqrt1  # (D, D)
    w_mid = _clamp_psd(np.linalg.eigvalsh((mid + mid.T) / 2), "sqrt(sigma1) sigma2 sqrt(sigma1)", ref * ref)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(w_mid).sum())


def fvd_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Fréchet distance between the Gaussians fitted to two FeatureStats (biased covariances)."""
    if a.dim != b.dim:
        raise ValueError(f"fvd_from_stats: expected stats of equal dim but found {a.dim} and {b.dim}")
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


_NAME_PART = re.compile(r"^[a-z][a-z0-9-]*$")


def metric_name(detector_name: str, protocol: str, n: int, frames: int) -> str:
    """Metric key that always names the detector, e.g. "fvd[i3d]_2048_16f" or "rfvd[clf-synthetic]_2048_16f".

    Follows StyleGAN-V's protocol-encoding names (`fvd2048_16f`), with the detector in brackets so that a
    distance measured with a stand-in classifier is never reported as plain I3D FVD. `protocol` is a
    lowercase tag such as "fvd", "rfvd", "gfvd" or "fp-fvd64"; `n` is the number of clips per side.
    """
    for what, value in (("detector_name", detector_name), ("protocol", protocol)):
        if not _NAME_PART.match(value):
            raise ValueError(f"metric_name: expected {what} matching {_NAME_PART.pattern} but found {value!r}")
    if n <= 0 or frames <= 0:
        raise ValueError(f"metric_name: expected positive n and frames but found n={n}, frames={frames}")
    return f"{protocol}[{detector_name}]_{n}_{frames}f"
