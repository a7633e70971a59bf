"""Video decoding with decord, probing, and the spatial pipeline: short-side resize (antialiased) + centre crop.

Spatial pipeline (facts §7, official ``datasets/video_dataset.py``): Resize(short side -> resolution,
antialias=True) then CenterCrop(resolution), with torchvision's size and crop rules (long side =
int(resolution * long / short); crop offset = int(round((size - resolution) / 2))). The resize is torch's
``F.interpolate(mode="bilinear", antialias=True)``, the kernel torchvision's Resize uses. We run it on the uint8
frames (channels-last view, torch's vectorised uint8 kernel), as torchvision.transforms.v2 Resize does for uint8
tensors on AVX2 CPUs (``_do_native_uint8_resize_on_cpu``): ~10x faster than float32 here. Against the official
float pipeline (uint8 -> /255 -> resize, unrounded) the stored values differ by at most one grey level, mean 0.27
(rounding alone gives 0.25; tested).

Usability rules (a rejected video raises :class:`VideoError` with its reason; the caller lists it as a failure):
- missing, empty (0 bytes) or unreadable (decord cannot open it);
- truncated: the container header declares more frames than decord finds (more than max(2, 5 %) missing; a
  frame or two of difference is common in intact files), or the header is readable but decord cannot read the
  frames, or decoding fails part way (decord may report frames it cannot decode);
- too short: fewer than ``min_frames`` (= clips.frames x clips.stride) frames;
- oddly sized: the short side is below resolution / 4 (it would be upscaled more than 4x) or the aspect ratio
  exceeds 4:1 (a centre crop would keep less than a quarter of the picture).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av
import decord
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.dlpack import from_dlpack

MAX_UPSCALE = 4  # reject when the short side is below resolution / MAX_UPSCALE
MAX_ASPECT = 4.0  # reject when long side / short side exceeds this
DECODE_BYTES = 64 << 20  # decode and resize at most this many source bytes at once (bounds memory for big videos)
_DECODE_ERRORS = (decord.DECORDError, RuntimeError, av.error.FFmpegError)


class VideoError(Exception):
    """A video that cannot be used; ``str(err)`` is the reason written to failures.csv."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int  # frames decord can index
    declared_frames: int  # frames the container header declares (0: unknown)
    fps: float
    height: int
    width: int


def quiet_decord() -> None:
    """Silence decord's FFmpeg log lines (broken files are reported through failures.csv instead)."""
    decord.logging.set_level(decord.logging.QUIET)


def _header(path: Path) -> tuple[int, int, int] | None:
    """(declared frames, height, width) from the container header via PyAV; None when PyAV cannot read it."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            return int(stream.frames), stream.codec_context.height, stream.codec_context.width
    except av.error.FFmpegError:
        return None


def open_video(path: str | os.PathLike, threads: int = 1) -> tuple[decord.VideoReader, VideoInfo]:
    """Open ``path`` with decord and probe it; raises :class:`VideoError` (missing / empty / unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError("missing file")
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
        header = _header(path)
        if header is None:  # no usable header: no truncation check; the size comes from the first frame
            height, width = reader[0].shape[:2] if len(reader) else (0, 0)
            header = (0, height, width)
            reader.seek(0)
        info = VideoInfo(len(reader), header[0], float(reader.get_avg_fps()), header[1], header[2])
    except _DECODE_ERRORS:
        header = _header(path)
        if header is not None and header[0] > 0:  # the container is fine, its frames are not
            raise VideoError(f"truncated or corrupt: header declares {header[0]} frames but decord cannot read "
                             "them") from None
        raise VideoError("unreadable: decord cannot open it (not a video, or cut short inside its header)") from None
    return reader, info


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, declared frame count, fps and size of a video (decord + the container header via PyAV)."""
    return open_video(path)[1]


def check_usable(info: VideoInfo, *, min_frames: int, resolution: int) -> None:
    """Raise :class:`VideoError` when ``info`` breaks a usability rule (module docstring)."""
    missing = info.declared_frames - info.num_frames
    if missing > max(2, info.declared_frames // 20):
        raise VideoError(f"truncated: header declares {info.declared_frames} frames, {info.num_frames} decodable")
    short, long = sorted((info.height, info.width))
    if short * MAX_UPSCALE < resolution:
        raise VideoError(f"too small: {info.height}x{info.width}, short side must be >= resolution/{MAX_UPSCALE}"
                         f" = {resolution / MAX_UPSCALE:g}")
    if long > MAX_ASPECT * short:
        raise VideoError(f"odd aspect ratio: {info.height}x{info.width} exceeds {MAX_ASPECT:g}:1")
    if info.num_frames < min_frames:
        raise VideoError(f"too short: {info.num_frames} frames, needs >= {min_frames} (clips.frames x clips.stride)")


def resized_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """torchvision Resize(int) output size: the short side becomes ``resolution``, the long side is truncated."""
    if height <= width:
        return resolution, int(resolution * width / height)
    return int(resolution * height / width), resolution


def resize_crop(frames: np.ndarray | torch.Tensor, resolution: int) -> np.ndarray:
    """Short-side resize (bilinear, antialiased) + centre crop of uint8 (T, H, W, 3) -> uint8 (T, R, R, 3)."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3) but found {x.dtype} {tuple(x.shape)}")
    t, h, w, _ = x.shape
    nh, nw = resized_size(h, w, resolution)
    x = rearrange(x, "t h w c -> t c h w")  # channels-last view, no copy
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = int(round((nh - resolution) / 2.0)), int(round((nw - resolution) / 2.0))
    x = x[:, :, top:top + resolution, left:left + resolution]  # (T, 3, R, R)
    return rearrange(x, "t c h w -> t h w c").numpy()  # (T, R, R, 3), a view when x is channels-last


def decode_frames(path: str | os.PathLike, *, stride: int, resolution: int, min_frames: int,
                  max_frames: int | None = None, threads: int = 1) -> tuple[np.ndarray, VideoInfo]:
    """Decode every ``stride``-th frame from frame 0 (at most ``max_frames``), resize + crop; uint8 (N, R, R, 3).

    Raises :class:`VideoError` for an unusable video (module docstring), including a decode failure part way.
    """
    reader, info = open_video(path, threads)
    check_usable(info, min_frames=min_frames, resolution=resolution)
    count = math.ceil(info.num_frames / stride)
    if max_frames is not None:
        count = min(count, max_frames)
    out = np.empty((count, resolution, resolution, 3), dtype=np.uint8)
    chunk = max(1, DECODE_BYTES // (info.height * info.width * 3))
    for lo in range(0, count, chunk):
        hi = min(count, lo + chunk)
        try:
            batch = reader.get_batch(list(range(lo * stride, hi * stride, stride)))  # (N, H, W, 3) decord array
        except _DECODE_ERRORS as exc:
            if "from_size == to_size" in str(exc):  # decord 0.6 pads the rows of some widths (16, 24, 48, ...)
                raise VideoError(f"unsupported frame size {info.height}x{info.width}: decord returns a wrong row "
                                 "stride for this width") from None
            raise VideoError(f"truncated or corrupt: decoding failed in frames {lo * stride}..{(hi - 1) * stride}"
                             f" ({str(exc).splitlines()[0][:120]})") from None
        out[lo:hi] = resize_crop(from_dlpack(batch.to_dlpack()), resolution)  # zero-copy hand-over to torch
    return out, info
