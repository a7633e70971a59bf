"""The embedded synthetic action video set: class-labelled videos written in UCF-101's on-disk layout.

The pipeline's default runs the real method end to end on this set (params.yaml ``synthetic``), so it is built to
need what UCF-101 needs (paper §4.1; facts §7): a class is *what* moves and *how* (shape x motion), and every
shape and motion is shared by several classes, so one frame's appearance does not tell the class; only the motion
over a 16-frame window does. Videos of one class differ by nuisance: per group (as UCF-101's groups share an
actor and a scene) the background gradient and texture, the object colour and size; per clip the start
position, phase, speed, direction and amplitude, and an optional drifting distractor dot.

Layout (UCF-101): ``<root>/<Class>/v_<Class>_gGG_cCC.<ext>``, ``<root>/ucfTrainTestlist/classInd.txt`` (1-based,
alphabetical), ``trainlist0{1,2,3}.txt`` (with 1-based labels) and ``testlist0{1,2,3}.txt``; split k tests on
groups 7(k-1)+1 .. 7k (split 1: g01-g07, as UCF-101) and trains on the others. Everything is a deterministic
function of the seed: each video draws from its own ``numpy`` generator keyed by (seed, shape, motion, group,
clip), and the encoder runs single-threaded, so the same parameters give the same decoded frames.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import av
import numpy as np
from einops import reduce

from larp.errors import ParamsError
from larp.data.counts import SPLIT_GROUPS, tested_groups  # torch-free there (params validation); re-exported
from larp.io import atomic_dir
from larp.runtime import progress

SHAPES = ("Disc", "Square", "Triangle", "Ring", "Bar", "Cross", "Frame")
MOTIONS = ("Sweep", "Bounce", "Orbit", "Pulse", "Zigzag", "Spin", "Billiard", "FigureEight", "Pendulum", "Hop")
MOTION_TEXT = {
    "Sweep": "slides left and right at a constant height (triangle wave)",
    "Bounce": "bounces up and down on a floor (abs-sine height) at a fixed x",
    "Orbit": "circles the frame centre (clockwise or anticlockwise)",
    "Pulse": "stays in place and grows and shrinks (scale 0.6-1.4)",
    "Zigzag": "drifts slowly sideways while moving quickly up and down",
    "Spin": "stays in place and rotates (either direction)",
    "Billiard": "bounces off all four walls along diagonals",
    "FigureEight": "traces a figure of eight (Lissajous 1:2)",
    "Pendulum": "swings on an arc below a pivot, tilting with the swing",
    "Hop": "hops along parabolic arcs while drifting sideways",
}
# rotation cannot be seen on a rotationally symmetric shape
_INVISIBLE = {("Disc", "Spin"), ("Ring", "Spin")}
MAX_CLASSES = 60  # params schema bound (68 shape x motion pairs exist)
SUPERSAMPLE = 2  # antialiasing: render at 2x and average 2x2 blocks
# decord 0.6 returns frames with a wrong row stride for these widths (found by scanning even widths 8..198)
DECORD_BAD_WIDTHS = (8, 12, 16, 24, 48, 72)


@dataclass(frozen=True)
class SyntheticConfig:
    """The ``synthetic`` section of params.yaml (meaning of each key: the comments there)."""

    seed: int = 0
    num_classes: int = 10
    groups: int = 25
    clips_per_group: int = 4
    frames: int = 64
    height: int = 72
    width: int = 96
    fps: int = 25
    codec: str = "mpeg4"
    container: str = "avi"
    object_size: tuple[float, float] = (0.12, 0.16)  # object circumradius range, fraction of min(height, width)
    motion_period: tuple[float, float] = (20.0, 36.0)  # frames per motion cycle, drawn per clip
    grain: float = 4.0  # std (0-255 scale) of the static background texture
    background_colours: int = 0  # 0: the two gradient colours are continuous; N > 0: drawn from an N-colour palette
    background_ramp: float = 1.0  # fraction of the colour difference c1 -> c2 the gradient spans (0: flat colour c1)
    object_colours: int = 0  # 0: the object hue is continuous; N > 0: one of N evenly spaced hues

    def __post_init__(self) -> None:
        lo, hi = self.object_size
        if not 0 < lo <= hi <= 0.3:
            raise ParamsError(f"synthetic.object_size must be [min, max] with 0 < min <= max <= 0.3 (fractions of the "
                             f"shorter frame side; larger objects cannot move inside the frame) but found "
                             f"{list(self.object_size)}")
        p_lo, p_hi = self.motion_period
        if not 0 < p_lo <= p_hi:
            raise ParamsError(f"synthetic.motion_period must be [min, max] frames per cycle with 0 < min <= max but "
                              f"found {list(self.motion_period)}")
        if not 0 <= self.background_colours <= 64:
            raise ParamsError(f"synthetic.background_colours must be 0 (continuous colours) or a palette size 1..64 "
                              f"but found {self.background_colours}")
        if not 0 <= self.object_colours <= 64:
            raise ParamsError(f"synthetic.object_colours must be 0 (continuous object hue) or a palette size 1..64 "
                              f"but found {self.object_colours}")
        if not 0 <= self.background_ramp <= 1:
            raise ParamsError(f"synthetic.background_ramp must be in [0, 1] (fraction of the two-colour difference the "
                              f"background gradient spans; 0 = flat) but found {self.background_ramp}")
        if self.grain < 0:
            raise ParamsError(f"synthetic.grain must be >= 0 (std of the background texture) but found {self.grain}")
        if self.height % 2 or self.width % 2:
            raise ParamsError(f"synthetic.height and width must be even (yuv420p video) but found "
                             f"{self.height}x{self.width}")
        if self.width in DECORD_BAD_WIDTHS:
            raise ParamsError(f"synthetic.width = {self.width} cannot be read back: decord 0.6 decodes widths "
                              f"{DECORD_BAD_WIDTHS} with a wrong row stride; use another width, e.g. 32 or 96")
        if self.groups < SPLIT_GROUPS + 1:
            raise ParamsError(f"synthetic.groups must be >= {SPLIT_GROUPS + 1} so split 1 has train groups, "
                             f"found {self.groups}")
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ParamsError(f"synthetic.num_classes must be in 2..{MAX_CLASSES}, found {self.num_classes}")

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> SyntheticConfig:
        values = {f.name: section[f.name] for f in fields(cls) if f.name in section}
        for key in ("object_size", "motion_period"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class ClassDef:
    name: str  # UCF-style CamelCase, e.g. "DiscSweep"
    shape: str
    motion: str


def class_table(num_classes: int) -> list[ClassDef]:
    """The ``num_classes`` classes, sorted by name (UCF-101 class ids are alphabetical, facts §7).

    Uses ceil(n/2) shapes (at most all of them) and walks the shape x motion grid along its diagonals, so each
    shape is used by about two classes with different motions and neighbouring classes share a motion.
    """
    n_shapes = min(len(SHAPES), max(1, math.ceil(num_classes / 2)))
    chosen: list[tuple[str, str]] = []
    for d in range(len(MOTIONS)):
        for s in range(n_shapes):
            pair = (SHAPES[s], MOTIONS[(s + d) % len(MOTIONS)])
            if pair not in _INVISIBLE and len(chosen) < num_classes:
                chosen.append(pair)
    if len(chosen) < num_classes:
        raise ValueError(f"only {len(chosen)} classes can be built, {num_classes} were asked for")
    return sorted((ClassDef(s + m, s, m) for s, m in chosen), key=lambda c: c.name)


# ---------------------------------------------------------------------------------------------------------------
# Shapes: inside-tests in object coordinates (u, v), unit circumradius

def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av_ = np.abs(u), np.abs(v)
    if shape == "Disc":
        return u * u + v * v <= 1.0
    if shape == "Square":
        return np.maximum(au, av_) <= 0.7
    if shape == "Triangle":  # equilateral, apex up (v grows downwards)
        return (v <= 0.5) & (v >= math.sqrt(3.0) * au - 1.0)
    if shape == "Ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.55**2)
    if shape == "Bar":
        return (au <= 0.95) & (av_ <= 0.28)
    if shape == "Cross":
        return ((au <= 0.95) & (av_ <= 0.28)) | ((au <= 0.28) & (av_ <= 0.95))
    if shape == "Frame":
        m = np.maximum(au, av_)
        return (m <= 0.7) & (m >= 0.42)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _draw(canvas: np.ndarray, shape: str, x: float, y: float, angle: float, radius: float,
          colour: np.ndarray) -> None:
    """Alpha-composite an antialiased shape (centre x, y in pixels, pixel p spans [p, p+1)) onto ``canvas``."""
    h, w, _ = canvas.shape
    reach = radius * 1.05 + 1.0
    x0, x1 = max(0, math.floor(x - reach)), min(w, math.ceil(x + reach))
    y0, y1 = max(0, math.floor(y - reach)), min(h, math.ceil(y + reach))
    if x1 <= x0 or y1 <= y0:
        return
    xs = x0 + (np.arange((x1 - x0) * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - x
    ys = y0 + (np.arange((y1 - y0) * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - y
    c, s = math.cos(angle), math.sin(angle)
    u = (xs[None, :] * c + ys[:, None] * s) / radius
    v = (ys[:, None] * c - xs[None, :] * s) / radius
    cover = _inside(shape, u, v).astype(np.float32)  # (h*S, w*S)
    alpha = reduce(cover, "(h s1) (w s2) -> h w 1", "mean", s1=SUPERSAMPLE, s2=SUPERSAMPLE)
    patch = canvas[y0:y1, x0:x1]
    patch += alpha * (colour - patch)


# ---------------------------------------------------------------------------------------------------------------
# Motions: pose (x, y, angle, scale) per frame

def _tri(u: np.ndarray) -> np.ndarray:
    """Triangle wave with period 1 in [-1, 1]; tri(0) = 1."""
    return 1.0 - 4.0 * np.abs(u - np.round(u))


def _poses(motion: str, t: np.ndarray, h: int, w: int, radius: float, rng: np.random.Generator,
           period_range: tuple[float, float]) -> np.ndarray:
    """Object pose per frame, (T, 4) = (x, y, angle, scale); keeps the object inside the frame."""
    margin = radius * 1.45 if motion == "Pulse" else radius * 1.05
    xc, yc = w / 2, h / 2
    ax, ay = max(w / 2 - margin, 0.0), max(h / 2 - margin, 0.0)
    period = rng.uniform(*period_range)  # frames per cycle (synthetic.motion_period)
    u = t / period + rng.uniform(0, 1)
    sign = rng.choice([-1.0, 1.0])
    amp = rng.uniform(0.7, 1.0)
    x0, y0 = xc + ax * rng.uniform(-0.6, 0.6), yc + ay * rng.uniform(-0.6, 0.6)
    angle = np.full_like(t, rng.uniform(0, 2 * math.pi))
    scale = np.ones_like(t)
    if motion == "Sweep":
        x, y = xc + sign * ax * amp * _tri(u), np.full_like(t, y0)
    elif motion == "Bounce":
        x, y = np.full_like(t, x0), (h - margin) - 2 * ay * amp * np.abs(np.sin(math.pi * u))
    elif motion == "Orbit":
        x, y = xc + ax * amp * np.cos(2 * math.pi * sign * u), yc + ay * amp * np.sin(2 * math.pi * sign * u)
    elif motion == "Pulse":
        x, y = np.full_like(t, x0), np.full_like(t, y0)
        scale = 1.0 + 0.4 * np.sin(2 * math.pi * u)
    elif motion == "Zigzag":
        x, y = xc + sign * ax * amp * _tri(u / 3), yc + ay * amp * _tri(1.5 * u)
    elif motion == "Spin":
        x, y = np.full_like(t, x0), np.full_like(t, y0)
        angle = angle + sign * math.pi * u
    elif motion == "Billiard":
        x, y = xc + sign * ax * _tri(u), yc + ay * _tri(rng.uniform(0.6, 0.9) * u + rng.uniform(0, 1))
    elif motion == "FigureEight":
        x, y = xc + sign * ax * amp * np.sin(2 * math.pi * u), yc + ay * amp * np.sin(4 * math.pi * u)
    elif motion == "Pendulum":
        length = max(2 * ay, 1.0)
        theta = min(rng.uniform(0.6, 0.9), math.asin(min(1.0, ax / length))) * np.sin(2 * math.pi * u)
        x, y = xc + length * np.sin(theta), margin + length * np.cos(theta)
        angle = angle + theta
    elif motion == "Hop":
        x = xc + sign * ax * amp * _tri(u / 4)
        y = (h - margin) - 2 * ay * amp * (1 - (2 * (u - np.floor(u)) - 1) ** 2)
    else:
        raise ValueError(f"unknown motion {motion!r}; expected one of {MOTIONS}")
    return np.stack([x, y, angle, scale], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# One video

def _hsv_to_rgb(hue: float, sat: float, val: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return val * (1 - sat * np.clip(np.minimum(k, 4 - k), 0, 1))


def background_palette(seed: int, n: int) -> np.ndarray:
    """(n, 3) dull background colours (0-255), a deterministic function of the seed: evenly spaced hues at a fixed
    low saturation and value, so the objects (saturated, bright) stand out against every background."""
    g = np.random.default_rng([seed, 7411])
    offset = g.uniform(0, 1)
    return np.stack([255 * _hsv_to_rgb((offset + k / n) % 1.0, 0.55, 0.45) for k in range(n)])


def render_video(cfg: SyntheticConfig, cls: ClassDef, group: int, clip: int) -> np.ndarray:
    """Render one video as uint8 (T, H, W, 3). Deterministic in (cfg.seed, class, group, clip)."""
    key = [cfg.seed, SHAPES.index(cls.shape), MOTIONS.index(cls.motion), group]
    g = np.random.default_rng(key)  # group-level nuisance: scene and object look
    r = np.random.default_rng(key + [clip])  # clip-level nuisance: where and how fast
    h, w = cfg.height, cfg.width
    # background: a dull two-colour gradient in a random direction plus a static texture (no class information)
    if cfg.background_colours:
        palette = background_palette(cfg.seed, cfg.background_colours)
        c1, c2 = palette[g.integers(0, len(palette), 2)]
    else:
        c1, c2 = g.uniform(15, 130, 3), g.uniform(15, 130, 3)
    phi = g.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / w - 0.5) * math.cos(phi) + (yy / h - 0.5) * math.sin(phi) + 0.5
    bg = c1 + (cfg.background_ramp * np.clip(ramp, 0, 1))[..., None] * (c2 - c1) + g.normal(0, cfg.grain, (h, w, 1))  # (H, W, 3)
    if cfg.object_colours:  # one of N evenly spaced hues at full saturation and value
        colour = 255 * _hsv_to_rgb(g.integers(0, cfg.object_colours) / cfg.object_colours, 1.0, 1.0)
    else:
        colour = 255 * _hsv_to_rgb(g.uniform(0, 1), g.uniform(0.6, 1.0), g.uniform(0.85, 1.0))
    radius = min(h, w) * g.uniform(*cfg.object_size)
    t = np.arange(cfg.frames, dtype=np.float64)
    poses = _poses(cls.motion, t, h, w, radius, r, cfg.motion_period)
    distractor = r.uniform(0, 1) < 0.5
    d_start, d_end = r.uniform([0, 0], [w, h]), r.uniform([0, 0], [w, h])
    d_colour = np.full(3, r.uniform(60, 200))
    out = np.empty((cfg.frames, h, w, 3), dtype=np.uint8)
    for i, (x, y, angle, scale) in enumerate(poses):
        canvas = bg.astype(np.float32, copy=True)
        if distractor:  # a small grey dot drifting in a straight line across the whole video
            dx, dy = d_start + (d_end - d_start) * i / max(cfg.frames - 1, 1)
            _draw(canvas, "Disc", dx, dy, 0.0, radius * 0.3, d_colour)
        _draw(canvas, cls.shape, x, y, angle, radius * scale, colour)
        np.clip(canvas, 0, 255, out=canvas)
        out[i] = np.rint(canvas)
    return out


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encode uint8 (T, H, W, 3) frames with PyAV (yuv420p, fixed quality, one encoder thread: deterministic)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        ctx = stream.codec_context
        ctx.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": "16", "preset": "medium"}
        else:  # constant quantiser 3 (ffmpeg -q:v 3): near-lossless at these sizes
            ctx.qscale = True
            ctx.global_quality = 3 * 118  # FF_QP2LAMBDA = 118
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


# ---------------------------------------------------------------------------------------------------------------
# The whole set

def video_relpath(cfg: SyntheticConfig, cls: ClassDef, group: int, clip: int) -> str:
    return f"{cls.name}/v_{cls.name}_g{group:02d}_c{clip:02d}.{cfg.container}"


def _make_one(job: tuple[SyntheticConfig, ClassDef, int, int, str]) -> int:
    cfg, cls, group, clip, path = job
    write_video(path, render_video(cfg, cls, group, clip), cfg.fps, cfg.codec)
    return os.path.getsize(path)


def _write_lists(cfg: SyntheticConfig, classes: list[ClassDef], root: Path) -> None:
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c.name}\n" for i, c in enumerate(classes)))
    for split in (1, 2, 3):
        tested = set(tested_groups(split, cfg.groups))
        train, test = [], []
        for label, cls in enumerate(classes, start=1):
            for group in range(1, cfg.groups + 1):
                for clip in range(1, cfg.clips_per_group + 1):
                    rel = video_relpath(cfg, cls, group, clip)
                    if group in tested:
                        test.append(rel)
                    else:
                        train.append(f"{rel} {label}")
        (lists / f"trainlist0{split}.txt").write_text("\n".join(train) + "\n")
        (lists / f"testlist0{split}.txt").write_text("\n".join(test) + "\n")


def _describe(cfg: SyntheticConfig, classes: list[ClassDef], videos: int) -> str:
    rows = "\n".join(f"| {i} | {c.name} | {c.shape} | {c.motion}: {MOTION_TEXT[c.motion]} |"
                     for i, c in enumerate(classes))
    return f"""# Synthetic action videos (larp.data.synthetic)

{videos} videos: {len(classes)} classes x {cfg.groups} groups x {cfg.clips_per_group} clips, {cfg.frames} frames of
{cfg.height}x{cfg.width} at {cfg.fps} fps, codec {cfg.codec} in .{cfg.container}; seed {cfg.seed}.
Generated by `workflow/scripts/make_synthetic.py`; regenerate rather than edit.

A class is a shape doing a motion. Every shape appears in several classes (differing only in motion) and every
motion in several classes (differing only in shape) where the class count allows, so telling classes apart needs
the motion across frames, not one frame's appearance.

| class id (0-based) | name | shape | motion |
|---|---|---|---|
{rows}

Nuisance (not class information): per group, the background (two dull colours{' from a ' + str(cfg.background_colours) + '-colour palette' if cfg.background_colours else ''}; a gradient in a
random direction spanning {cfg.background_ramp:g} of their difference, 0 = flat), a static grain texture (std {cfg.grain:g}), the object colour (bright; {'one of ' + str(cfg.object_colours) + ' hues' if cfg.object_colours else 'random hue'}) and size
({cfg.object_size[0]:g}-{cfg.object_size[1]:g} of the shorter side); per clip, position, phase, speed
({cfg.motion_period[0]:g}-{cfg.motion_period[1]:g} frames per cycle), direction, amplitude, and in half of the clips a
grey dot drifting in a straight line.

Layout as UCF-101: `<Class>/v_<Class>_gGG_cCC.{cfg.container}`; `ucfTrainTestlist/classInd.txt` (1-based,
alphabetical), `trainlist0k.txt` (`path label`) and `testlist0k.txt` (`path`). Split k tests on groups
{SPLIT_GROUPS}(k-1)+1 .. {SPLIT_GROUPS}k and trains on the rest (split 1 tests g01-g07, as UCF-101).
"""


def make_synthetic(cfg: SyntheticConfig, out: str | os.PathLike, threads: int = 1) -> dict[str, Any]:
    """Render, encode and publish the whole set at ``out`` (atomically). Returns a summary for metrics."""
    start = time.perf_counter()
    classes = class_table(cfg.num_classes)
    with atomic_dir(out) as tmp:
        jobs = []
        for cls in classes:  # fixed order: class, group, clip
            (tmp / cls.name).mkdir()
            for group in range(1, cfg.groups + 1):
                for clip in range(1, cfg.clips_per_group + 1):
                    jobs.append((cfg, cls, group, clip, str(tmp / video_relpath(cfg, cls, group, clip))))
        bar = {"total": len(jobs), "desc": "make_synthetic", "unit": "video"}
        if threads <= 1:
            sizes = [_make_one(j) for j in progress(jobs, **bar)]
        else:
            with ProcessPoolExecutor(threads) as pool:
                sizes = list(progress(pool.map(_make_one, jobs, chunksize=4), **bar))
        _write_lists(cfg, classes, tmp)
        (tmp / "DATASET.md").write_text(_describe(cfg, classes, len(jobs)))
    return {"videos": len(jobs), "classes": len(classes), "bytes": int(sum(sizes)),
            "seconds": round(time.perf_counter() - start, 3), "params": asdict(cfg)}

