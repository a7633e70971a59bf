"""Viewable videos: H.264 MP4 files (PyAV), animated GIFs per class and a PNG contact sheet (Pillow, installed with
matplotlib), side-by-side real | reconstruction videos.

Videos here are uint8 arrays (..., T, H, W, 3), the layout samples are stored in for scoring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import warnings

import av
import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw

GIF_FPS = 8  # playback rate of the GIFs (slow enough to follow 16-frame clips)
SHEET_FRAMES = 8  # frames per contact-sheet row, evenly spaced over the clip
MIN_TILE = 64  # small videos are enlarged (nearest neighbour, integer factor) to at least this many pixels
LABEL_WIDTH = 160  # contact-sheet margin for the row labels (pixels)
MP4_FPS = 8  # playback rate of the MP4 files (as the GIFs)
MP4_CRF = 18  # x264 constant-rate factor: visually lossless at these sizes


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Decoder output (B, 3, T, H, W), any float range -> uint8 (B, T, H, W, 3), clamped to [0, 1] then rounded."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"expected a video batch (B, 3, T, H, W) but found {tuple(video.shape)}")
    x = rearrange(video.detach().float().clamp(0, 1), "b c t h w -> b t h w c")
    return x.mul(255).round().to(torch.uint8).cpu().numpy()


def _upscale(frames: np.ndarray) -> np.ndarray:
    """Enlarge (..., H, W, 3) by an integer factor so that H >= MIN_TILE."""
    k = max(1, -(-MIN_TILE // frames.shape[-3]))
    return frames.repeat(k, axis=-3).repeat(k, axis=-2) if k > 1 else frames


def video_grid(videos: np.ndarray, pad: int = 2) -> np.ndarray:
    """uint8 (R, C, T, H, W, 3) -> one video (T, R*(h+pad)+pad, C*(w+pad)+pad, 3) with white borders, where the
    tiles h x w are the videos enlarged to at least MIN_TILE pixels."""
    if videos.ndim != 6 or videos.dtype != np.uint8:
        raise ValueError(f"expected uint8 videos (R, C, T, H, W, 3) but found {videos.dtype} {videos.shape}")
    padded = np.pad(_upscale(videos), [(0, 0), (0, 0), (0, 0), (0, pad), (0, pad), (0, 0)], constant_values=255)
    grid = rearrange(padded, "r c t h w ch -> t (r h) (c w) ch")
    return np.pad(grid, [(0, 0), (pad, 0), (pad, 0), (0, 0)], constant_values=255)


def write_gif(path: str | Path, frames: np.ndarray, fps: int = GIF_FPS) -> None:
    """Animated, looping GIF of uint8 frames (T, H, W, 3)."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def mp4_codec() -> str:
    """``libx264`` (H.264) when the installed PyAV wheel has it (the PyPI wheels do), else ``mpeg4`` (MPEG-4 part 2,
    which every FFmpeg build has); the fallback is announced once with a warning."""
    if "libx264" in av.codecs_available:
        return "libx264"
    warnings.warn("PyAV has no libx264 encoder: writing MPEG-4 part 2 (mpeg4) video into the MP4 instead of H.264",
                  stacklevel=2)
    return "mpeg4"


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = MP4_FPS, codec: str | None = None) -> Path:
    """Write uint8 frames (T, H, W, 3) as an MP4 (H.264, yuv420p; :func:`mp4_codec`) and return the path.

    yuv420p needs even sizes: an odd height or width gets one black row/column. Plays in browsers and players."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), T > 0, but found {frames.dtype} {frames.shape}")
    frames = np.pad(frames, [(0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)])
    path = Path(path)
    codec = codec or mp4_codec()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=round(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(MP4_CRF)}
        else:
            stream.bit_rate = 4_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())  # flush the encoder
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file with PyAV: uint8 (T, H, W, 3)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def side_by_side(real: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """uint8 videos (N, T, H, W, 3) real and reconstructed -> one video (T, H', W', 3): a row of real clips above
    the row of their reconstructions, enlarged and bordered as :func:`video_grid`."""
    if real.shape != recon.shape:
        raise ValueError(f"side_by_side: real {real.shape} and reconstruction {recon.shape} differ in shape")
    return video_grid(np.stack([real, recon]))


def write_contact_sheet(path: str | Path, rows: Sequence[tuple[str, np.ndarray]], title: str = "") -> None:
    """PNG with one labelled row per (label, uint8 video (T, H, W, 3)): SHEET_FRAMES evenly spaced frames."""
    if not rows:
        raise ValueError("write_contact_sheet: expected at least one row but found none")
    strips = []
    for _, video in rows:
        idx = np.linspace(0, video.shape[0] - 1, min(SHEET_FRAMES, video.shape[0])).round().astype(int)
        strips.append(video_grid(video[idx][None, :, None])[0])  # (H', W', 3): one row of frames
    tile = np.stack(strips)  # (rows, H', W', 3)
    head = 20 if title else 0
    sheet = Image.new("RGB", (LABEL_WIDTH + tile.shape[2], head + tile.shape[0] * tile.shape[1]), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 4), title, fill="black")
    for r, ((label, _), strip) in enumerate(zip(rows, tile)):
        y = head + r * tile.shape[1]
        sheet.paste(Image.fromarray(strip), (LABEL_WIDTH, y))
        draw.text((4, y + tile.shape[1] // 2 - 6), label[:26], fill="black")
    sheet.save(path)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def write_class_grids(out_dir: str | Path, videos: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
                      per_class: int, max_classes: int, real_of: Callable[[np.ndarray], np.ndarray] | None = None,
                      title: str = "") -> list[Path]:
    """Per class (the first ``max_classes`` class ids present): ``class-<id>-<name>.gif`` with up to ``per_class``
    samples side by side, and ``contact_sheet.png`` with each shown class's first sample. For frame prediction,
    ``real_of(indices)`` returns the real clips of those samples, shown above their predictions (only the shown
    clips are read). Returns the written files, the contact sheet last."""
    out_dir = Path(out_dir)
    written, rows = [], []
    for c in sorted(set(labels.tolist()))[:max_classes]:
        pick = np.flatnonzero(labels == c)[:per_class]
        name = class_names[c] if c < len(class_names) else str(c)
        real = None if real_of is None else real_of(pick)
        grid_rows = [videos[pick]] if real is None else [real, videos[pick]]
        path = out_dir / f"class-{c:03d}-{_slug(name)}.gif"
        write_gif(path, video_grid(np.stack(grid_rows)))
        written.append(path)
        if real is not None:
            rows.append((f"{name} (real)", real[0]))
        rows.append((f"{name}" + (" (predicted)" if real is not None else ""), videos[pick[0]]))
    sheet = out_dir / "contact_sheet.png"
    write_contact_sheet(sheet, rows, title)
    return [*written, sheet]


def write_samples_mp4(path: str | Path, videos: np.ndarray, labels: np.ndarray, *, per_class: int, max_classes: int,
                      real_of: Callable[[np.ndarray], np.ndarray] | None = None) -> Path:
    """One MP4 grid of samples: a row per class (the first ``max_classes`` present) with up to ``per_class`` samples;
    for frame prediction (``real_of``, as :func:`write_class_grids`) each class's real clips are the row above its
    predictions. Short rows are filled with white."""
    rows = []
    for c in sorted(set(labels.tolist()))[:max_classes]:
        pick = np.flatnonzero(labels == c)[:per_class]
        for part in ([] if real_of is None else [real_of(pick)]) + [videos[pick]]:
            blank = np.full((per_class - len(part), *part.shape[1:]), 255, np.uint8)
            rows.append(np.concatenate([part, blank]))
    return write_mp4(path, video_grid(np.stack(rows)))
