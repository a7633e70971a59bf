"""Figures of the latent-space analyses (paper App. B.2-B.4: Fig. 8, 10, 11, 12-14, 15).

Each function draws one figure with matplotlib's Agg backend (selected inside the function, so importing this
module has no side effect), writes it as one PNG at ``path`` atomically (``larp.io.atomic_file``) and returns
the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..io import atomic_file
from .ngrams import dominance_area

DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG at ``path`` (atomically) and close it."""
    plt = _pyplot()
    path = Path(path)
    try:
        if tight:
            fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return path


def _require(frames: Mapping[str, pd.DataFrame], columns: Sequence[str], who: str) -> None:
    if not frames:
        raise ValueError(f"{who}: expected at least one curve but found none")
    for name, df in frames.items():
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{who}: {name!r} lacks columns {missing}; found {list(df.columns)}")


# ----------------------------------------------------------------------------------------------------------
# App. B.4


def plot_ngram_histograms(hists: Mapping[str, pd.DataFrame], path: str | os.PathLike, title: str,
                          max_frequency: int | None = None, bins: int = 50) -> Path:
    """Paper Fig. 12-14: one panel per entry (e.g. "with prior", "no prior") of
    :func:`larp.analysis.ngrams.frequency_histogram` output. x: frequency (occurrences of an n-gram), binned
    into ``bins`` equal bins over the range shared by all panels; y: number of unique n-grams in the bin (log
    scale). ``max_frequency`` keeps only n-grams occurring fewer than that many times (Fig. 13's zoom)."""
    _require(hists, ("frequency", "num_ngrams"), "plot_ngram_histograms")
    plt = _pyplot()
    kept = {}
    for name, df in hists.items():
        df = df[df["frequency"] < max_frequency] if max_frequency is not None else df
        kept[name] = df
    top = max((int(df["frequency"].max()) for df in kept.values() if len(df)), default=1)
    edges = np.linspace(0, top + 1, bins + 1)
    fig, axes = plt.subplots(1, len(kept), figsize=(4.2 * len(kept), 3.4), squeeze=False, sharex=True)
    for ax, (name, df) in zip(axes[0], kept.items(), strict=True):
        ax.hist(df["frequency"].to_numpy(), bins=edges, weights=df["num_ngrams"].to_numpy(), color="tab:blue",
                log=True)
        ax.set_title(f"{name} ({int(df['num_ngrams'].sum())} unique)", fontsize=9)
        ax.set_xlabel("frequency (occurrences of an n-gram)")
        ax.set_ylabel("number of unique n-grams")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_dominance(curves: Mapping[str, pd.DataFrame], path: str | os.PathLike) -> Path:
    """Paper Fig. 15: each entry's class dominance scores (:func:`larp.analysis.ngrams.class_dominance`)
    sorted descending against the n-gram rank, area filled, legend with the area (sum of scores)."""
    _require(curves, ("score",), "plot_dominance")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, df in curves.items():
        scores = np.sort(df["score"].to_numpy(dtype=np.float64))[::-1]
        x = np.arange(1, scores.size + 1)
        area = dominance_area(df)["area"]
        (line,) = ax.plot(x, scores, label=f"{name} (area {area:.1f}, {scores.size} n-grams)")
        ax.fill_between(x, scores, alpha=0.3, color=line.get_color())
    ax.set_xlabel("n-grams (sorted by score)")
    ax.set_ylabel("class dominance score")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------------
# App. B.3


def plot_importance(drops: np.ndarray, path: str | os.PathLike, ncols: int = 5) -> Path:
    """Paper Fig. 10: one scatter per video of the PSNR drop (y) caused by each token index (x); drops (V, n)
    from :func:`larp.analysis.importance.token_importance`."""
    drops = np.asarray(drops, dtype=np.float64)
    if drops.ndim != 2 or drops.shape[0] < 1:
        raise ValueError(f"plot_importance: expected drops (V, n) with V >= 1 but found {drops.shape}")
    plt = _pyplot()
    v = drops.shape[0]
    cols = min(ncols, v)
    rows = math.ceil(v / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False, sharey=True)
    for i, ax in enumerate(axes.flat):
        if i >= v:
            ax.axis("off")
            continue
        ax.scatter(np.arange(drops.shape[1]), drops[i], s=4)
        ax.set_title(f"video {i}", fontsize=8)
        ax.set_xlabel("token index", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("PSNR drop (dB)", fontsize=8)
    return _save(fig, path)


def plot_heatmaps(heat: torch.Tensor | np.ndarray, path: str | os.PathLike,
                  frames: Sequence[int] | None = None) -> Path:
    """Paper Fig. 11: heat (V, T, H, W) from :func:`larp.analysis.importance.token_heatmap`, one row per video,
    one column per frame in ``frames`` (default (0, T // 2, T - 1)); one colour scale for the whole grid."""
    heat = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
    if heat.ndim != 4 or heat.shape[0] < 1:
        raise ValueError(f"plot_heatmaps: expected heat (V, T, H, W) with V >= 1 but found {heat.shape}")
    v, t = heat.shape[:2]
    frames = tuple(frames) if frames is not None else (0, t // 2, t - 1)
    if not frames or any(not 0 <= f < t for f in frames):
        raise ValueError(f"plot_heatmaps: expected frames in [0, {t}) but found {frames}")
    plt = _pyplot()
    vmax = float(heat[:, list(frames)].max()) or 1.0  # all-zero heat still draws
    fig, axes = plt.subplots(v, len(frames), figsize=(1.8 * len(frames) + 0.6, 1.8 * v), squeeze=False)
    image = None
    for i in range(v):
        for j, f in enumerate(frames):
            ax = axes[i][j]
            image = ax.imshow(heat[i, f], cmap="inferno", vmin=0.0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t={f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"video {i}", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(fig, path, tight=False)  # tight_layout does not handle the colorbar shared by all axes


# ----------------------------------------------------------------------------------------------------------
# App. B.2


def plot_redundancy(curves: Mapping[str, pd.DataFrame], path: str | os.PathLike) -> Path:
    """Paper Fig. 8: reconstruction PSNR (mean, error bar = std) against repetition level (log2 x axis), one
    line per tokenizer; curves from :func:`larp.analysis.importance.redundancy_curve`."""
    _require(curves, ("level", "psnr_mean", "psnr_std"), "plot_redundancy")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    levels: set[int] = set()
    for name, df in curves.items():
        df = df.sort_values("level")
        ax.errorbar(df["level"], df["psnr_mean"], yerr=df["psnr_std"], marker="o", capsize=3, label=name)
        levels.update(int(x) for x in df["level"])
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(levels), [str(x) for x in sorted(levels)])
    ax.set_xlabel("repetition level")
    ax.set_ylabel("reconstruction PSNR (dB)")
    ax.legend(fontsize=8)
    return _save(fig, path)


__all__ = ["plot_dominance", "plot_heatmaps", "plot_importance", "plot_ngram_histograms", "plot_redundancy"]
