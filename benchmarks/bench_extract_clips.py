"""Benchmark: clip extraction throughput beside decord's own decode rate on the same files.

Extraction = the real stage function (larp.data.clips.extract_clips: decode, resize + crop, shard writing,
manifests). Decord baseline = a plain ``decord.VideoReader(path, num_threads=1)`` + ``get_batch`` of all frames
per video: no conversion to numpy, no resize, nothing written (the strictest reference). Both run single-process and with a process pool of ``--threads``; the goal is extraction >= 80 %
of decord's rate. Clips/s counts a clip as ``clips.frames`` frames (decord: decoded frames / clips.frames).

    python benchmarks/bench_extract_clips.py --threads 2          # default synthetic set (generated if absent)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import decord
import torch

from larp.config import load_params
from larp.data.clips import ClipConfig, extract_clips
from larp.data.datasets import SPLITS, list_videos
from larp.data.synthetic import SyntheticConfig, make_synthetic


def _decord_files(paths: list[str]) -> int:
    """Decode every frame of each file with decord (no conversion, no copy); returns the number of frames."""
    decord.logging.set_level(decord.logging.QUIET)
    total = 0
    for p in paths:
        reader = decord.VideoReader(p, num_threads=1)
        total += reader.get_batch(list(range(len(reader)))).shape[0]
    return total


def decord_rate(paths: list[str], threads: int) -> float:
    """Frames per second decoded by plain decord over ``paths`` with ``threads`` processes."""
    start = time.perf_counter()
    if threads <= 1:
        frames = _decord_files(paths)
    else:
        parts = [paths[i::threads * 8] for i in range(threads * 8)]
        with ProcessPoolExecutor(threads) as pool:
            frames = sum(pool.map(_decord_files, parts))
    return frames / (time.perf_counter() - start)


def extract_rate(name: str, ds: dict, cfg: ClipConfig, threads: int, work: Path) -> float:
    """Stored frames per second of the extract_clips stage function."""
    start = time.perf_counter()
    summary = extract_clips(name, ds, cfg, work / f"clips-{threads}", threads=threads)
    return sum(s["frames"] for s in summary["splits"].values()) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", nargs="+", default=["params.yaml"])
    ap.add_argument("--dataset", default="synthetic", help="a key of params datasets (its root is read)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many interleaved runs of each")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    params = load_params(args.params)
    cfg = ClipConfig.from_params(params["clips"])
    with tempfile.TemporaryDirectory() as tmpdir:
        work = Path(tmpdir)
        ds = dict(params["datasets"][args.dataset])
        if ds["kind"] == "synthetic" and not Path(ds["root"]).is_dir():
            print(f"{ds['root']} absent: generating the default synthetic set into a temporary folder")
            ds["root"] = str(work / "synthetic")
            make_synthetic(SyntheticConfig.from_params(params["synthetic"]), ds["root"], threads=args.threads)
        paths = [p for split in SPLITS for p in list_videos(ds, split)["path"]]
        print(f"{len(paths)} videos from {ds['root']}; clips of {cfg.frames} frames, resolution {cfg.resolution}, "
              f"stride {cfg.stride}")
        print(f"{'processes':>9} {'decord frames/s':>16} {'decord clips/s':>15} {'extract clips/s':>16} {'ratio':>7}")
        for threads in sorted({1, args.threads}):
            dec, ext = 0.0, 0.0
            for _ in range(args.repeat):  # interleaved, best of each: the machine may be shared
                dec = max(dec, decord_rate(paths, threads))
                ext = max(ext, extract_rate(args.dataset, ds, cfg, threads, work))
            print(f"{threads:>9} {dec:>16.0f} {dec / cfg.frames:>15.1f} {ext / cfg.frames:>16.1f} "
                  f"{ext / dec:>7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
