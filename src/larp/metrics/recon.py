"""Reconstruction metrics (PSNR, SSIM) and the frame resize of the frame-prediction FVD protocol.

References (docs/official-code-facts.md §4 and §6):
- PSNR: mean over clips of -10 log10(per-clip MSE), pixels in [0, 1], reconstructions clamped to [0, 1]
  (hywang66/LARP `eval/eval_larp_tokenizer.py`, `trainers/larp_tokenizer_trainer.py`).
- SSIM: pytorch_msssim.ssim with data_range=1. The official trainer feeds (B*C, T, H, W), i.e. time as the
  channel axis (facts §8.11); here SSIM is computed per RGB frame instead, as the usual per-frame SSIM.
- Frame-prediction FVD resizes both videos to 64x64 with torchvision Resize (bilinear) per frame
  (`sample.py` `predict_frames`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from pytorch_msssim import ssim
from torch import Tensor

SSIM_WIN = 11  # pytorch_msssim's default Gaussian window; frames must be at least this large


def _check_pair(x: Tensor, y: Tensor, who: str) -> None:
    if x.shape != y.shape or x.ndim != 5 or x.shape[1] != 3:
        raise ValueError(
            f"{who}: expected two videos of equal shape (B, 3, T, H, W) but found {tuple(x.shape)} and {tuple(y.shape)}"
        )


def psnr_per_clip(x: Tensor, y: Tensor) -> Tensor:
    """PSNR per clip, (B,) float64: -10 log10(mean squared error over the clip), peak 1.

    x: reconstruction (B, 3, T, H, W), clamped to [0, 1] first as the official evaluator clamps decoder
    output; y: reference in [0, 1], not clamped. Identical clips give +inf (no cap), as the official formula.
    """
    _check_pair(x, y, "psnr_per_clip")
    diff = x.double().clamp(0, 1) - y.double()  # (B, 3, T, H, W)
    mse = reduce(diff.square(), "b c t h w -> b", "mean")  # (B,)
    return -10 * torch.log10(mse)


def ssim_per_frame(x: Tensor, y: Tensor) -> Tensor:
    """SSIM per clip, (B,) float32: mean over frames of the RGB SSIM of each frame (data_range=1).

    x is clamped to [0, 1] as in psnr_per_clip. Frames smaller than the 11-pixel window are refused.
    """
    _check_pair(x, y, "ssim_per_frame")
    if min(x.shape[-2:]) < SSIM_WIN:
        raise ValueError(
            f"ssim_per_frame: expected frames of at least {SSIM_WIN}x{SSIM_WIN} but found {tuple(x.shape[-2:])}"
        )
    t = x.shape[2]
    xf = rearrange(x.float().clamp(0, 1), "b c t h w -> (b t) c h w")
    yf = rearrange(y.float(), "b c t h w -> (b t) c h w")
    per_frame = ssim(xf, yf, data_range=1.0, size_average=False)  # (B*T,)
    return reduce(per_frame, "(b t) -> b", "mean", t=t)


def resize_videos(v: Tensor, size: int, *, antialias: bool = True) -> Tensor:
    """Resize every frame of (B, C, T, H, W) to (size, size) with bilinear interpolation.

    Matches torchvision `Resize((size, size))` on tensors, which LARP uses for the 64x64 frame-prediction
    protocol; antialias=True is torchvision's default since 0.17 (LARP pins no version).
    """
    if v.ndim != 5:
        raise ValueError(f"resize_videos: expected videos (B, C, T, H, W) but found shape {tuple(v.shape)}")
    t = v.shape[2]
    frames = rearrange(v, "b c t h w -> (b t) c h w")
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    return rearrange(frames, "(b t) c h w -> b c t h w", t=t)  # (B, C, T, size, size)
