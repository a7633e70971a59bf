"""Clip extraction into the clip store, the store's reader, and the clip sampling protocols.

Extraction (stage extract_clips) decodes each listed video with decord, keeps every ``stride``-th frame from frame 0
(at most ``max_frames_per_video``), resizes the short side to ``resolution`` (antialiased) and centre-crops
(facts §7, :mod:`larp.data.video`), and appends the uint8 frames to memory-mappable shards. Layout of
``results/clips/<dataset>/`` (published atomically, larp.io.atomic_dir)::

    train/ test/       frames-00000.npy ...  uint8 (N, R, R, 3); ~shard_frames frames each; a video never spans two
                       manifest.csv          video_id, path, class_id, class_name, split, start_frame (source
                                             frames), num_frames (stored), fps (source fps / stride), shard, offset
    classes.csv        class_id, class_name
    failures.csv       path, split, reason   (videos skipped; rules in larp.data.video)
    summary.json       per split: listed, ok, failed, frames, windows; params; seconds; decode throughput

Protocols (facts §6-7): training draws a uniform video then a uniform start (:func:`random_window`); rFVD uses one
random window per video (:func:`rfvd_windows`; the official one is unseeded, ours is seeded); gFVD samples
``random.Random(42).sample`` from the pool of all non-overlapping windows from frame 0 (:func:`chunk_pool`,
:func:`sample_chunks`). The official loader pads videos shorter than 16 frames by repeating the last frame; we
skip them instead (reported in failures.csv).
"""

from __future__ import annotations

import ctypes
import io
import math
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from einops import rearrange

from larp.data.counts import chunks_per_video  # torch-free there (params validation); re-exported
from larp.data.datasets import SPLITS, class_names, list_videos
from larp.data.video import VideoError, decode_frames, quiet_decord
from larp.io import atomic_file, atomic_outputs, read_json, write_json
from larp.runtime import progress

MANIFEST_COLUMNS = ["video_id", "path", "class_id", "class_name", "split", "start_frame", "num_frames", "fps",
                    "shard", "offset"]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ClipConfig:
    """The ``clips`` section of params.yaml (meaning of each key: the comments there)."""

    frames: int = 16  # paper §4.1
    stride: int = 1
    resolution: int = 64
    max_frames_per_video: int | None = None
    max_failed_fraction: float = 0.05
    shard_frames: int = 16384
    rfvd_seed: int = 0
    gfvd_seed: int = 42  # facts §6: random.Random(42)

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> ClipConfig:
        return cls(**{f.name: section[f.name] for f in fields(cls)})


class ExtractionError(RuntimeError):
    """Too many videos of a split could not be used; nothing was published."""


# ---------------------------------------------------------------------------------------------------------------
# Writing

class _ShardWriter:
    """Streams whole videos into ``frames-NNNNN.npy`` shards; the header is rewritten in place when a shard closes.

    numpy pads .npy headers so the first axis can grow without changing the header size, so frames go straight from
    the decoded array to the file (no shard-sized buffer, no second copy).
    """

    def __init__(self, folder: Path, shard_frames: int, frame_shape: tuple[int, ...]):
        self.folder, self.limit, self.frame_shape = folder, shard_frames, tuple(frame_shape)
        self.index, self.count, self.file = -1, 0, None

    def _header(self, n: int) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                                   "shape": (n, *self.frame_shape)})
        return buf.getvalue()

    def add(self, frames: np.ndarray) -> tuple[int, int]:
        """Append uint8 (N, *frame_shape) frames; returns (shard index, offset of the first frame)."""
        if frames.dtype != np.uint8 or frames.shape[1:] != self.frame_shape:
            raise ValueError(f"expected uint8 frames (N, {self.frame_shape}) but found {frames.dtype} {frames.shape}")
        if self.file is None or (self.count and self.count + len(frames) > self.limit):
            self.close()
            self.index += 1
            self.file = open(self.folder / f"frames-{self.index:05d}.npy", "wb")  # noqa: SIM115 - closed in close()
            self.file.write(self._header(0))
            self.count = 0
        offset = self.count
        self.file.write(np.ascontiguousarray(frames).data)
        self.count += len(frames)
        return self.index, offset

    def close(self) -> None:
        if self.file is None:
            return
        header = self._header(self.count)
        if len(header) != len(self._header(0)):
            raise RuntimeError("npy header grew; cannot finalise the shard in place")
        self.file.seek(0)
        self.file.write(header)
        self.file.close()
        self.file = None


def _extract_one(job: tuple[str, ClipConfig]) -> tuple[np.ndarray | None, float, str]:
    """Worker: (frames (N, R, R, 3) or None, stored fps, failure reason or '')."""
    path, cfg = job
    try:
        frames, info = decode_frames(path, stride=cfg.stride, resolution=cfg.resolution,
                                     min_frames=cfg.frames * cfg.stride, max_frames=cfg.max_frames_per_video)
    except VideoError as exc:
        return None, 0.0, str(exc)
    return frames, info.fps / cfg.stride, ""


def _die_with_parent(parent: int, main_thread: bool) -> None:
    """Make this pool worker end when the extracting process ``parent`` dies, even by SIGKILL (issue 14 case 6).

    Without it a killed extract_clips left its workers blocked forever on the job pipe (each worker holds the pipe's
    write end too, so it never sees end-of-file). On Linux the kernel sends SIGKILL on the parent's death
    (``prctl(PR_SET_PDEATHSIG)``); it is tied to the thread that started the worker, so it is used only when that was
    the main thread. Otherwise, and where prctl is unavailable, a daemon thread polls ``os.getppid()`` every 0.5 s.
    """
    armed = False
    if main_thread and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if armed:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="larp-parent-watchdog", daemon=True).start()


def _init_worker(parent: int, main_thread: bool) -> None:
    _die_with_parent(parent, main_thread)
    torch.set_num_threads(1)
    quiet_decord()


def _ordered_map(pool: Executor | None, fn: Callable[[T], R], items: Sequence[T], window: int) -> Iterator[R]:
    """``map`` in input order with at most ``window`` jobs in flight (bounded memory); in-process without a pool."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: deque = deque()
    it = iter(items)
    for item in it:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _reason_counts(failures: Iterable[Mapping[str, str]]) -> str:
    counts = Counter(f["reason"].split(":")[0] for f in failures)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


def _extract_split(videos: pd.DataFrame, folder: Path, cfg: ClipConfig, pool: Executor | None, window: int,
                   failures: list[dict[str, str]], keep: Callable[[], bool]) -> dict[str, int]:
    """Extract one split into ``folder``; appends every unusable video to ``failures``. Every video is tried, also
    once too many failed, so one pass lists them all; frames are stored only while ``keep()`` (nothing doomed)."""
    folder.mkdir()
    split = folder.name
    exists = np.array([Path(p).is_file() for p in videos["path"]], dtype=bool)  # cheap check before decoding
    missing = [{"path": p, "split": split, "reason": "missing file"} for p, e in zip(videos["path"], exists) if not e]
    failures.extend(missing)
    todo = videos[exists]
    writer = _ShardWriter(folder, cfg.shard_frames, (cfg.resolution, cfg.resolution, 3))
    rows, failed, frames_total = [], len(missing), 0
    results = _ordered_map(pool, _extract_one, [(p, cfg) for p in todo["path"]], window)
    try:
        for rec, (frames, fps, reason) in zip(todo.itertuples(index=False), progress(
                results, total=len(todo), desc=f"extract {split}", unit="video")):
            if frames is None:
                failures.append({"path": rec.path, "split": split, "reason": reason})
                failed += 1
                continue
            if not keep():
                continue
            shard, offset = writer.add(frames)
            frames_total += len(frames)
            rows.append((rec.video_id, rec.path, rec.class_id, rec.class_name, split, 0, len(frames), fps, shard,
                         offset))
    finally:
        writer.close()
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    manifest.to_csv(folder / "manifest.csv", index=False)
    return {"listed": len(videos), "ok": len(manifest), "failed": failed, "frames": frames_total,
            "windows": int((manifest["num_frames"] // cfg.frames).sum())}


def extract_clips(name: str, ds: Mapping[str, Any], cfg: ClipConfig, out: str | os.PathLike,
                  threads: int = 1, listings: Mapping[str, pd.DataFrame] | None = None,
                  metrics_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Extract both splits of dataset ``name`` into the clip store at ``out``; returns summary.json's content.

    Lists everything first (a missing root or list raises :class:`~larp.errors.DatasetError` before any
    work). Every listed video of both splits is tried; if more than ``cfg.max_failed_fraction`` of a split's videos
    failed, raises :class:`ExtractionError` without publishing and writes ALL the failures beside the would-be output
    (``<out>.failures.csv``), so one fix-and-rerun is enough. ``metrics_path`` (the flat metrics of
    :func:`summary_metrics`) is published together with the store, the store last (larp.io.atomic_outputs).
    """
    out = Path(out)
    sidecar = out.with_name(out.name + ".failures.csv")
    listings = listings if listings is not None else {split: list_videos(ds, split) for split in SPLITS}
    classes = class_names(ds)
    failures: list[dict[str, str]] = []

    per_split, counted = Counter(), [0]  # failures per split, counted incrementally (called once per video)

    def over_limit() -> list[str]:
        """Each split with more failures than clips.max_failed_fraction allows, in words."""
        per_split.update(f["split"] for f in failures[counted[0]:])
        counted[0] = len(failures)
        out = []
        for split in SPLITS:
            listed, failed = len(listings[split]), per_split[split]
            if failed > math.floor(cfg.max_failed_fraction * listed):
                out.append(f"split {split}: {failed} of {listed} videos ({failed / max(listed, 1):.1%})")
        return out

    def fail(bad: list[str]) -> None:
        with atomic_file(sidecar) as tmp:
            pd.DataFrame(failures, columns=["path", "split", "reason"]).to_csv(tmp, index=False)
        raise ExtractionError(
            f"dataset {name}, {'; '.join(bad)} could not be used, more than clips.max_failed_fraction = "
            f"{cfg.max_failed_fraction:g} ({_reason_counts(failures)}); nothing was published. All "
            f"{len(failures)} unusable videos and their reasons are listed in {sidecar}")

    start = time.perf_counter()
    counts: dict[str, dict[str, int]] = {}
    pool = None
    if threads > 1:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        pool = ProcessPoolExecutor(threads, mp_context=ctx, initializer=_init_worker,
                                   initargs=(os.getpid(), threading.current_thread() is threading.main_thread()))
    else:
        quiet_decord()
    try:
        with atomic_outputs() as outs:
            tmp = outs.dir(out)
            for split in SPLITS:
                counts[split] = _extract_split(listings[split], tmp / split, cfg, pool, 4 * threads, failures,
                                               keep=lambda: not over_limit())
            if bad := over_limit():
                fail(bad)
            seconds = time.perf_counter() - start
            frames = sum(c["frames"] for c in counts.values())
            pd.DataFrame({"class_id": range(len(classes)), "class_name": classes}).to_csv(tmp / "classes.csv",
                                                                                         index=False)
            pd.DataFrame(failures, columns=["path", "split", "reason"]).to_csv(tmp / "failures.csv", index=False)
            summary = {
                "dataset": name, "splits": counts, "seconds": round(seconds, 3), "threads": threads,
                "decode": {"frames_per_s": round(frames / seconds, 1),
                           "clips_per_s": round(frames / seconds / cfg.frames, 2)},
                "params": {"clips": asdict(cfg), "dataset": dict(ds)},
            }
            write_json(tmp / "summary.json", summary)
            if metrics_path is not None:
                write_json(outs.file(metrics_path), summary_metrics(summary))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    sidecar.unlink(missing_ok=True)  # a stale list from an earlier failed run
    return summary


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of summary.json as flat metrics (``train.ok``, ``decode.clips_per_s``, ...) for the tracker."""
    out = {f"{split}.{k}": float(v) for split, counts in summary["splits"].items() for k, v in counts.items()}
    out.update({f"decode.{k}": float(v) for k, v in summary["decode"].items()})
    out["seconds"] = float(summary["seconds"])
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reading

class ClipStore:
    """Read side of one split of a clip store: ``ClipStore("results/clips/ucf101", "train")``.

    Shards are opened lazily as read-only memory maps. The store pickles without its maps and reopens them in a new
    process (also after a fork), so it can be handed to DataLoader worker processes.
    """

    def __init__(self, root: str | os.PathLike, split: str, dataset: str | None = None):
        """Open ``split`` of the store at ``root``; with ``dataset``, refuse a store extracted from another dataset
        (a stage is given the exact store of the dataset its params name, and a wrong path must not be scored)."""
        self.root, self.split = Path(root), split
        folder = self.root / split
        if not (folder / "manifest.csv").is_file():
            raise FileNotFoundError(f"no clip store at {folder} (expected manifest.csv there); run the "
                                    "extract_clips stage for this dataset first")
        try:
            self.manifest = pd.read_csv(folder / "manifest.csv")
            missing = [c for c in MANIFEST_COLUMNS if c not in self.manifest.columns]
            if missing:
                raise ValueError(f"columns {missing} are missing")
            ints = ["class_id", "num_frames", "shard", "offset"]
            bad = [c for c in ints if not pd.api.types.is_integer_dtype(self.manifest[c])]
            if bad:
                raise ValueError(f"columns {bad} do not hold whole numbers")
            if len(self.manifest) and ((self.manifest[ints] < 0).any().any() or (self.manifest["num_frames"] < 1).any()):
                raise ValueError("negative ids, offsets or frame counts")
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise self._damaged(folder / "manifest.csv", str(exc)) from None
        try:
            self.class_names = list(pd.read_csv(self.root / "classes.csv")["class_name"].astype(str))
            summary = read_json(self.root / "summary.json")
            self.resolution = int(summary["params"]["clips"]["resolution"])
            self.dataset = str(summary.get("dataset") or self.root.name)  # the datasets.<name> it was extracted from
        except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise self._damaged(self.root, f"classes.csv or summary.json unreadable: {exc!r}") from None
        if dataset is not None and self.dataset != dataset:
            from larp.errors import StageError

            raise StageError(f"clip store {self.root} was extracted from dataset {self.dataset!r}, but params name "
                             f"{dataset!r} for this stage; pass results/clips/{dataset}")
        self.num_classes = len(self.class_names)
        self._counts = self.manifest["num_frames"].to_numpy()
        self._shards = self.manifest["shard"].to_numpy()
        self._offsets = self.manifest["offset"].to_numpy()
        self._labels = self.manifest["class_id"].to_numpy()
        ends = self.manifest.assign(end=self.manifest["offset"] + self.manifest["num_frames"]).groupby("shard")["end"]
        self._needed = {int(k): int(v) for k, v in ends.max().items()}  # frames each shard must hold
        self._maps: dict[int, np.ndarray] = {}
        self._pid = os.getpid()

    def _damaged(self, path: Path, detail: str) -> Exception:
        from larp.errors import StageError

        return StageError(f"clip store file {path} is damaged ({detail}); delete {self.root} and re-run "
                          "extract_clips for this dataset (Snakemake and DVC re-run it when its output is missing)")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}

    def __len__(self) -> int:
        return len(self.manifest)

    def num_frames(self, i: int) -> int:
        return int(self._counts[i])

    def label(self, i: int) -> int:
        return int(self._labels[i])

    def _shard(self, k: int) -> np.ndarray:
        if self._pid != os.getpid():  # maps are per process
            self._maps, self._pid = {}, os.getpid()
        if k not in self._maps:
            path = self.root / self.split / f"frames-{k:05d}.npy"
            try:
                shard = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as exc:  # empty, truncated or garbled
                raise self._damaged(path, f"{type(exc).__name__}: {exc}") from None
            shape = (self.resolution, self.resolution, 3)
            if shard.dtype != np.uint8 or shard.shape[1:] != shape or len(shard) < self._needed.get(k, 0):
                raise self._damaged(path, f"holds {shard.dtype} {shard.shape}, the manifest needs uint8 "
                                          f"({self._needed.get(k, 0)}, {', '.join(map(str, shape))})")
            self._maps[k] = shard
        return self._maps[k]

    def read(self, i: int, start: int, length: int) -> np.ndarray:
        """Frames ``start .. start+length-1`` of video ``i`` as a uint8 (length, H, W, 3) array (a copy)."""
        n = self.num_frames(i)
        if not (0 <= start and length >= 1 and start + length <= n):
            raise IndexError(f"window [{start}, {start + length}) is outside video {i}, which has {n} stored frames")
        lo = int(self._offsets[i]) + start
        return np.array(self._shard(int(self._shards[i]))[lo:lo + length])

    def read_many(self, windows: Sequence[tuple[int, int]], length: int) -> np.ndarray:
        """uint8 (B, length, H, W, 3) for ``windows`` = [(video index, start), ...]."""
        out = np.empty((len(windows), length, self.resolution, self.resolution, 3), dtype=np.uint8)
        for b, (i, start) in enumerate(windows):
            out[b] = self.read(i, start, length)
        return out


def across_classes(store: ClipStore, windows: Sequence[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Up to ``n`` of ``windows`` for a figure, one per class in class order, then a second round, and so on: a
    store is written class by class, so its first windows would all show one class."""
    by_class: dict[int, list[tuple[int, int]]] = {}
    for w in windows:
        by_class.setdefault(store.label(w[0]), []).append(w)
    rounds = max((len(v) for v in by_class.values()), default=0)
    picked = [by_class[c][r] for r in range(rounds) for c in sorted(by_class) if r < len(by_class[c])]
    return picked[:n]


# ---------------------------------------------------------------------------------------------------------------
# Protocols

def random_window(store: ClipStore, rng: np.random.Generator, length: int) -> tuple[int, int]:
    """Training sampler (facts §7): a uniformly random video, then a uniformly random start."""
    i = int(rng.integers(len(store)))
    return i, int(rng.integers(store.num_frames(i) - length + 1))


def rfvd_windows(store: ClipStore, length: int, seed: int) -> list[tuple[int, int]]:
    """rFVD (facts §6): one random window per video, in manifest order; seeded (the official one is unseeded)."""
    rng = np.random.default_rng(seed)
    return [(i, int(rng.integers(store.num_frames(i) - length + 1))) for i in range(len(store))]


def chunk_pool(store: ClipStore, length: int) -> list[tuple[int, int]]:
    """gFVD pool (facts §6): every non-overlapping window from stored frame 0, floor(n / length) per video."""
    return [(i, k * length) for i in range(len(store)) for k in range(chunks_per_video(store.num_frames(i), length))]


def sample_chunks(pool: Sequence[T], n: int, seed: int = 42) -> list[T]:
    """``random.Random(seed).sample(pool, n)``, exactly as the official gFVD real-clip sample (facts §6)."""
    if n > len(pool):
        raise ValueError(f"asked for {n} chunks but the pool holds only {len(pool)}; ask for at most {len(pool)}")
    return random.Random(seed).sample(list(pool), n)


def to_float_video(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [0, 1], the model's input layout (facts conventions)."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 (B, T, H, W, 3) but found {x.dtype} {tuple(x.shape)}")
    x = rearrange(x, "b t h w c -> b c t h w")
    return x.to(torch.float32, memory_format=torch.contiguous_format).div_(255)
