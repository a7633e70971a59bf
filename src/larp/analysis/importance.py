"""What single tokens do to a reconstruction (paper App. B.3, Fig. 10-11) and how a tokenizer uses temporal
redundancy (paper App. B.2, Fig. 8).

Works with any ``tokenizer`` exposing (all called under ``torch.no_grad``):
``encode(video, deterministic=True)`` -> object with ``.indices`` (B, n) long;
``decode_indices(indices)`` -> video (B, 3, T, H, W), un-clamped; ``cfg.codebook_size`` (K) and
``cfg.num_latents`` (n). Videos are float (B, 3, T, H, W) in [0, 1]. Tokens are always the deterministic
(argmax) SVQ tokens and reconstructions always come from ``decode_indices`` of those ids, so an unmodified
and a modified reconstruction differ only by the token that was changed. The model's train/eval mode is left
as the caller set it (put it in eval mode first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from einops import reduce, repeat
from torch import Tensor

from ..metrics.recon import psnr_per_clip


def _device(tokenizer, videos: Tensor) -> torch.device:
    """The tokenizer's device when it has parameters, else the videos' device."""
    if isinstance(tokenizer, torch.nn.Module):
        param = next(tokenizer.parameters(), None)
        if param is not None:
            return param.device
    return videos.device


def _check_videos(videos: Tensor) -> None:
    if not isinstance(videos, Tensor) or videos.ndim != 5 or videos.shape[1] != 3:
        shape = tuple(videos.shape) if isinstance(videos, Tensor) else type(videos).__name__
        raise ValueError(f"expected videos (V, 3, T, H, W) but found {shape}")
    if not videos.is_floating_point():
        raise ValueError(f"expected float videos in [0, 1] but found dtype {videos.dtype}")


def _chunks(total: int, size: int) -> Iterator[slice]:
    if size < 1:
        raise ValueError(f"expected batch_size >= 1 but found {size}")
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _encode(tokenizer, videos: Tensor, batch_size: int) -> Tensor:
    """Deterministic token ids (V, n) long, encoded in chunks of ``batch_size``."""
    return torch.cat([tokenizer.encode(videos[s], deterministic=True).indices.long()
                      for s in _chunks(videos.shape[0], batch_size)])


def _decode(tokenizer, indices: Tensor, batch_size: int) -> Tensor:
    """Reconstructions (B, 3, T, H, W) of ids (B, n), decoded in chunks of ``batch_size``."""
    return torch.cat([tokenizer.decode_indices(indices[s]) for s in _chunks(indices.shape[0], batch_size)])


def _drop(base: Tensor, modified: Tensor) -> Tensor:
    """base - modified, with 0 where both are equal (so +inf - +inf, two perfect reconstructions, gives 0)."""
    return torch.where(base == modified, torch.zeros_like(base), base - modified)


# ----------------------------------------------------------------------------------------------------------
# Token importance (App. B.3, Fig. 10) and heatmaps (Fig. 11)


@torch.no_grad()
def token_importance(tokenizer, videos: Tensor, generator: torch.Generator, batch_size: int = 64) -> np.ndarray:
    """PSNR drop caused by each single token (paper App. B.3, Fig. 10): (V, n) float64.

    For video v and token index i, token i is replaced by a code drawn uniformly from the K - 1 codes that
    differ from it, the ids are decoded, and drop[v, i] = PSNR(unmodified recon, video) - PSNR(modified
    recon, video), both against the original video (0 when both PSNRs are equal). The n modified copies of a
    video are decoded in chunks of ``batch_size``. All replacement codes are drawn up front, (V, n) from
    ``generator`` on the CPU, so the result is deterministic given the generator's seed.
    """
    _check_videos(videos)
    k, n = int(tokenizer.cfg.codebook_size), int(tokenizer.cfg.num_latents)
    if k < 2:
        raise ValueError(f"token_importance needs a codebook of at least 2 codes but found {k}")
    device = _device(tokenizer, videos)
    videos = videos.to(device)
    indices = _encode(tokenizer, videos, batch_size)  # (V, n)
    if indices.shape[1] != n:
        raise ValueError(f"expected {n} tokens per video (cfg.num_latents) but the encoder gave {indices.shape[1]}")
    base = psnr_per_clip(_decode(tokenizer, indices, batch_size), videos)  # (V,)
    draw = torch.randint(0, k - 1, tuple(indices.shape), generator=generator).to(device)  # (V, n) in [0, K-1)
    replacement = draw + (draw >= indices).long()  # (V, n): uniform over the K - 1 codes != indices
    eye = torch.eye(n, dtype=torch.bool, device=device)  # (n, n): row i modifies token i
    drops = torch.empty(indices.shape, dtype=torch.float64)
    for v in range(indices.shape[0]):
        modified = torch.where(eye, replacement[v].expand(n, n), indices[v].expand(n, n))  # (n, n)
        target = videos[v : v + 1].expand(n, *videos.shape[1:])  # (n, 3, T, H, W), a view
        mod_psnr = torch.cat([psnr_per_clip(tokenizer.decode_indices(modified[s]), target[s])
                              for s in _chunks(n, batch_size)])  # (n,)
        drops[v] = _drop(base[v].expand(n), mod_psnr).cpu()
    return drops.numpy()


@torch.no_grad()
def token_heatmap(tokenizer, videos: Tensor, index: int, replacement: int | None = None, *,
                  batch_size: int = 64) -> Tensor:
    """Per-pixel effect of one token index (paper App. B.3, Fig. 11): (V, T, H, W) float.

    heat = |recon(original ids) - recon(ids with token ``index`` replaced)|, both clamped to [0, 1] as a
    reconstruction is shown, averaged over the colour channels. The paper "sets the value of the token to 0";
    for discrete ids this is code ``replacement`` (default 0). A video whose token already is that code gets
    the next code, (replacement + 1) mod K, so every video's token really changes.
    """
    _check_videos(videos)
    k, n = int(tokenizer.cfg.codebook_size), int(tokenizer.cfg.num_latents)
    if not 0 <= index < n:
        raise ValueError(f"expected a token index in [0, {n}) but found {index}")
    code = 0 if replacement is None else int(replacement)
    if not 0 <= code < k or k < 2:
        raise ValueError(f"expected a replacement code in [0, {k}) with K >= 2 but found {code} (K={k})")
    device = _device(tokenizer, videos)
    videos = videos.to(device)
    indices = _encode(tokenizer, videos, batch_size)  # (V, n)
    modified = indices.clone()
    modified[:, index] = torch.where(indices[:, index] == code, (code + 1) % k, code)
    base = _decode(tokenizer, indices, batch_size).clamp(0, 1)  # (V, 3, T, H, W)
    changed = _decode(tokenizer, modified, batch_size).clamp(0, 1)
    return reduce((base - changed).abs(), "v c t h w -> v t h w", "mean")


# ----------------------------------------------------------------------------------------------------------
# Temporal redundancy (App. B.2, Fig. 8)


def repeat_frames(videos: Tensor, level: int) -> Tensor:
    """Repetition level ``level`` of paper App. B.2: the first T / level frames tiled ``level`` times.

    videos (B, C, T, H, W) -> (B, C, T, H, W) with frame t = frame (t mod T/level): the "shorter video
    repeated multiple times to form a T-frame video". Level 1 leaves the video unchanged; level T repeats the
    first frame. ``level`` must divide T (ValueError otherwise).
    """
    if videos.ndim != 5:
        raise ValueError(f"expected videos (B, C, T, H, W) but found {tuple(videos.shape)}")
    t = videos.shape[2]
    if not (isinstance(level, (int, np.integer)) and level >= 1 and t % level == 0):
        raise ValueError(f"expected a repetition level >= 1 that divides T={t} but found {level!r}")
    return repeat(videos[:, :, : t // level], "b c u h w -> b c (r u) h w", r=int(level))  # (B, C, T, H, W)


@torch.no_grad()
def redundancy_scores(tokenizer, videos: Tensor, levels: Sequence[int] = (1, 2, 4, 8, 16),
                      batch_size: int = 32) -> pd.DataFrame:
    """Per-video reconstruction PSNR at each repetition level (paper App. B.2, Fig. 8): columns ``level``,
    ``video`` (index into ``videos``), ``psnr``; levels in the order given, videos in order within a level.

    Each level's repeated videos (:func:`repeat_frames`) are tokenized deterministically, decoded, and scored by PSNR
    against the repeated input.
    """
    _check_videos(videos)
    for level in levels:
        repeat_frames(videos[:0], level)  # check every level before any model call
    device = _device(tokenizer, videos)
    frames = []
    for level in levels:
        repeated = repeat_frames(videos, level)  # (V, 3, T, H, W)
        scores = []
        for s in _chunks(repeated.shape[0], batch_size):
            batch = repeated[s].to(device)
            ids = tokenizer.encode(batch, deterministic=True).indices
            scores.append(psnr_per_clip(tokenizer.decode_indices(ids), batch).cpu())
        p = torch.cat(scores).numpy()  # (V,)
        frames.append(pd.DataFrame({"level": int(level), "video": np.arange(p.size), "psnr": p}))
    return pd.concat(frames, ignore_index=True)


def redundancy_curve(tokenizer, videos: Tensor, levels: Sequence[int] = (1, 2, 4, 8, 16),
                     batch_size: int = 32) -> pd.DataFrame:
    """Reconstruction PSNR against repetition level (paper App. B.2, Fig. 8): :func:`redundancy_scores` summarised
    per level as ``level``, ``psnr_mean``, ``psnr_std`` (population std, ddof=0, so one video gives 0),
    ``num_videos``; one row per level, in the order given."""
    return curve_of(redundancy_scores(tokenizer, videos, levels, batch_size))


def curve_of(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-level mean / population std / count of :func:`redundancy_scores` output, levels in their first order."""
    order = scores["level"].drop_duplicates().tolist()
    g = scores.groupby("level")["psnr"]
    return pd.DataFrame({"level": order, "psnr_mean": g.mean()[order].to_numpy(float),
                         "psnr_std": g.std(ddof=0)[order].to_numpy(float), "num_videos": g.size()[order].to_numpy(int)})


def redundancy_gains(scores: pd.DataFrame) -> pd.Series:
    """Per video: PSNR at the highest repetition level minus PSNR at the lowest, from :func:`redundancy_scores`
    output (columns level, video, psnr); indexed by video."""
    by_level = scores.pivot(index="video", columns="level", values="psnr")
    return by_level[by_level.columns.max()] - by_level[by_level.columns.min()]


__all__ = ["curve_of", "redundancy_curve", "redundancy_gains", "redundancy_scores", "repeat_frames", "token_heatmap",
           "token_importance"]
