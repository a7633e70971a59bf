"""Tokenizer health report: does a tokenizer reconstruct what moves, and do its tokens carry distinct content?

1D (holistic) tokenizers can fail silently: every token of a clip collapses onto one vector, the decoder reads the
tokens as an unordered bag, and the reconstruction is the clip's background and colour with no moving object. The
all-pixel PSNR barely shows it, because moving objects are a few percent of the pixels and the static background
already scores well. This report measures it directly, on any video (synthetic or real):

- **moving pixels**: pixels whose largest per-channel deviation from the clip's own temporal median frame exceeds
  ``threshold`` (default 0.15 on the [0, 1] scale). On real video this selects the parts that move (object or camera
  motion), not a segmentation of objects; a clip with no motion contributes no moving pixels.
- **PSNR on all and on moving pixels** of the reconstruction, of the clip's static temporal-mean frame (a blurred
  trail of the motion over a sharp background) and of the static temporal-median frame (background, no object).
  A tokenizer that does not beat the mean frame has learned less than "show one frame".
  A perfect reconstruction (+inf dB) is reported as None. All-pixel PSNR is the mean over clips of the per-clip PSNR, as the project's ``psnr``; moving-pixel PSNR is pooled
  over every moving pixel of the evaluated clips (clips differ in how many they have), -10 log10(mean squared error).
- **permutation drop**: PSNR of the reconstruction minus that of decoding the same tokens after a seeded random
  permutation within each clip. About 0 dB means the decoder ignores token order (a bag of tokens, i.e. collapsed
  holistic tokens); a patchwise tokenizer loses many dB, because its token order is the patch layout.
- **codebook usage and perplexity** of the deterministic tokens over the evaluated clips.

The accumulator is updated batch by batch, so it runs inside an evaluation loop at any scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import reduce
from torch import Tensor

from ..tokenizer.quantizer import codebook_usage
from .recon import psnr_per_clip

MOVING_THRESHOLD = 0.15  # max-channel |x - temporal median| on [0, 1] pixels


def moving_mask(video: Tensor, threshold: float = MOVING_THRESHOLD) -> Tensor:
    """(B, 3, T, H, W) in [0, 1] -> bool (B, 1, T, H, W): pixels that differ from the clip's temporal median frame
    by more than ``threshold`` in some channel."""
    median = video.median(dim=2, keepdim=True).values  # (B, 3, 1, H, W)
    return (video - median).abs().amax(dim=1, keepdim=True) > threshold


def _pooled_psnr(se_sum: float, count: int) -> float | None:
    if count == 0:
        return None
    mse = se_sum / count
    return None if mse == 0 else -10 * math.log10(mse)  # a perfect match (+inf dB) is None: JSON holds no inf


@dataclass
class _Pooled:
    """Per-clip PSNRs over all pixels plus the pooled squared error over moving pixels, for one reconstruction."""

    psnrs: list[Tensor] = field(default_factory=list)
    moving_se: float = 0.0

    def add(self, recon: Tensor, video: Tensor, mask: Tensor) -> None:
        self.psnrs.append(psnr_per_clip(recon, video).cpu())
        se = (recon.double().clamp(0, 1) - video.double()).square()
        self.moving_se += float(se.masked_select(mask.expand_as(se)).sum())

    def psnr(self) -> float | None:
        x = torch.cat(self.psnrs)
        return float(x.mean()) if torch.isfinite(x).all() else None


class HealthAccumulator:
    """Collects the health report over batches: ``add(video, recon, permuted_recon, indices)`` per batch."""

    def __init__(self, codebook_size: int, threshold: float = MOVING_THRESHOLD) -> None:
        self.codebook_size, self.threshold = codebook_size, threshold
        self.parts = {name: _Pooled() for name in ("recon", "mean_frame", "median_frame", "permuted")}
        self.moving = self.pixels = 0
        self.indices: list[Tensor] = []

    @torch.no_grad()
    def add(self, video: Tensor, recon: Tensor, permuted: Tensor, indices: Tensor) -> None:
        """video, recon, permuted: (B, 3, T, H, W); indices: (B, n) deterministic token ids."""
        video = video.float()
        mask = moving_mask(video, self.threshold)
        t = video.shape[2]
        mean_frame = reduce(video, "b c t h w -> b c 1 h w", "mean").expand(-1, -1, t, -1, -1)
        median_frame = video.median(dim=2, keepdim=True).values.expand(-1, -1, t, -1, -1)
        for name, x in (("recon", recon), ("mean_frame", mean_frame), ("median_frame", median_frame),
                        ("permuted", permuted)):
            self.parts[name].add(x.float(), video, mask)
        self.moving += int(mask.sum()) * 3  # squared errors are summed over the 3 channels
        self.pixels += mask.numel()
        self.indices.append(indices.reshape(-1).cpu())

    def report(self) -> dict[str, float | None]:
        """Flat dict of the health figures (None where undefined, e.g. no moving pixels)."""
        out: dict[str, float | None] = {}
        for name, prefix in (("recon", ""), ("mean_frame", "mean_frame_"), ("median_frame", "median_frame_"),
                             ("permuted", "permuted_")):
            part = self.parts[name]
            out[f"{prefix}psnr"] = part.psnr()
            out[f"{prefix}psnr_moving"] = _pooled_psnr(part.moving_se, self.moving)
        out["moving_fraction"] = self.moving / 3 / self.pixels if self.pixels else None
        usage, perplexity = codebook_usage(torch.cat(self.indices), self.codebook_size)
        out["codebook_usage"], out["perplexity"] = usage, perplexity
        out["codes_used"] = round(usage * self.codebook_size)

        def diff(a: str, b: str) -> float | None:
            x, y = out[a], out[b]
            return None if x is None or y is None else x - y

        out["gain_over_mean_frame_db"] = diff("psnr", "mean_frame_psnr")
        out["moving_gain_over_mean_frame_db"] = diff("psnr_moving", "mean_frame_psnr_moving")
        out["permutation_drop_db"] = diff("psnr", "permuted_psnr")
        return out


def permute_tokens(indices: Tensor, generator: torch.Generator) -> Tensor:
    """(B, n) ids -> the same ids with an independent random permutation within each clip (seeded)."""
    b, n = indices.shape
    order = torch.stack([torch.randperm(n, generator=generator) for _ in range(b)]).to(indices.device)
    return indices.gather(1, order)


__all__ = ["MOVING_THRESHOLD", "HealthAccumulator", "moving_mask", "permute_tokens"]
