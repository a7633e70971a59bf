"""Benchmark of the FVD engine on CPU: detector feature throughput and Fréchet distance time.

Measures (a) ClassifierDetector features in clips/s at 16x64x64 and 16x128x128 (the frame-prediction and
UCF-101 protocols of docs/official-code-facts.md §6), batch 16, and (b) frechet_distance at 400 dims (I3D features) and
2048 dims (for reference). The I3D TorchScript weights are not available on this machine, so I3D is not
timed. Throughput does not depend on the weights, so the classifier is used untrained.

    .venv/bin/python benchmarks/bench_fvd.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits  # installed with mlflow's scikit-learn; caps numpy's BLAS

from larp.metrics.detectors import ClassifierConfig, ClassifierDetector, VideoClassifier
from larp.metrics.fvd import frechet_distance


def time_call(fn, repeats: int) -> float:
    """Mean seconds per call over `repeats` calls, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and numpy-BLAS threads")
    parser.add_argument("--batch", type=int, default=16, help="clips per detector call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with threadpool_limits(limits=args.threads):
        run(args)
    return 0


def run(args: argparse.Namespace) -> None:

    # ----------------------------------------------------------------------------------------------------
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, repeats {args.repeats}")
    print("I3D: weights (i3d_torchscript.pt) not available on this machine; not timed.")
    for res in (64, 128):
        cfg = ClassifierConfig(frames=16, resolution=res)
        det = ClassifierDetector(VideoClassifier(cfg), "bench")
        videos = torch.rand(args.batch, 3, 16, res, res)  # (B, 3, T, H, W)
        sec = time_call(lambda: det.features(videos), args.repeats)
        print(f"{det.name} width={cfg.width} dim={cfg.feature_dim} 16x{res}x{res}: "
              f"{args.batch / sec:8.1f} clips/s ({sec * 1000:.0f} ms/batch)")

    # ----------------------------------------------------------------------------------------------------
    rng = np.random.default_rng(0)
    for dim in (400, 2048):
        stats = []
        for _ in range(2):
            a = rng.standard_normal((dim, dim + 16))
            stats.append((rng.standard_normal(dim), a @ a.T / dim))  # full-rank PSD covariance
        (m1, s1), (m2, s2) = stats
        sec = time_call(lambda: frechet_distance(m1, s1, m2, s2), args.repeats)
        print(f"frechet_distance dim={dim}: {sec * 1000:8.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
