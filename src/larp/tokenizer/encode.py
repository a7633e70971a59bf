"""Token precomputation: deterministic-SVQ tokens of the clip stores for the AR generator (paper App. A.2).

For every dataset and split, the clips are the non-overlapping ``frames``-long chunks of every stored video
(the pool the official sampler draws from, facts §6), optionally also horizontally flipped (the official AR
trainer flips on the fly, facts §5 "AR data pipeline"). Each clip also gets its frame-prediction condition: the first
``fp_context_frames`` frames padded to ``frames`` by repeating the last of them, encoded the same way
(paper App. A.2; deterministic SVQ, where the official sampler encodes conditions stochastically, facts §8.6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import repeat

from ..data.clips import ClipStore, chunk_pool, to_float_video
from ..runtime import progress
from .config import check_context  # defined torch-free there (params validation); re-exported
from .quantizer import codebook_usage


def token_dtype(codebook_size: int) -> type[np.integer]:
    """Storage dtype of token ids: uint16 while every id fits (K <= 65536), else int32 (token files, samples)."""
    return np.uint16 if codebook_size <= 2**16 else np.int32


def pad_context(video: torch.Tensor, context: int) -> torch.Tensor:
    """Keep the first ``context`` frames of (B,3,T,H,W) and repeat the last of them up to T frames."""
    t = video.shape[2]
    check_context(context, t)
    last = repeat(video[:, :, context - 1], "b c h w -> b c t h w", t=t - context)
    return torch.cat([video[:, :, :context], last], dim=2)


@torch.no_grad()
def encode_store(model, store: ClipStore, *, batch: int, flip: bool, context: int, device: str,
                 desc: str = "encode") -> dict[str, np.ndarray]:
    """Tokens (N, n) and frame-prediction condition tokens (N, n) of every chunk (and its mirror if ``flip``)."""
    frames = model.cfg.frames
    pool = chunk_pool(store, frames)
    if not pool:
        raise ValueError(f"{store}: no video holds {frames} frames; nothing to encode")
    variants = [False, True] if flip else [False]
    # ids are stored as uint16 (K <= 65536) and cast per batch: holding int64 ids until the end would peak at ~4x the
    # output size (K600 train at paper scale: 12.8M rows x 1024 ids x 2 arrays, ~105 GB with the final concatenation
    # instead of ~370 GB)
    dtype = token_dtype(model.cfg.codebook_size)
    toks, conds, labels, vids, starts, flips = [], [], [], [], [], []
    for flipped in variants:
        for i in progress(range(0, len(pool), batch), desc=f"{desc}{' (flipped)' if flipped else ''}"):
            part = pool[i:i + batch]
            video = to_float_video(store.read_many(part, frames)).to(device)
            if flipped:
                video = video.flip(-1)
            toks.append(model.encode(video, deterministic=True).indices.cpu().numpy().astype(dtype))
            cond = model.encode(pad_context(video, context), deterministic=True).indices
            conds.append(cond.cpu().numpy().astype(dtype))
            labels += [store.label(v) for v, _ in part]
            vids += [v for v, _ in part]
            starts += [s for _, s in part]
            flips += [flipped] * len(part)
    return {"tokens": np.concatenate(toks), "fp_cond": np.concatenate(conds),
            "labels": np.asarray(labels, np.int64), "video": np.asarray(vids, np.int64),
            "start": np.asarray(starts, np.int64), "flipped": np.asarray(flips, bool)}


def token_stats(tokens: np.ndarray, codebook_size: int) -> dict[str, float]:
    usage, ppl = codebook_usage(torch.from_numpy(tokens.astype(np.int64)), codebook_size)
    return {"codebook_usage": usage, "perplexity": ppl}


__all__: Sequence[str] = ["pad_context", "encode_store", "token_dtype", "token_stats"]
