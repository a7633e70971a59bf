"""Whole-pipeline benchmark: per-stage wall time and peak memory of a run, and how the heaviest stages scale.

Part 1 reads the files that Snakemake's ``benchmark:`` directives write during a run (here
logs/benchmarks/<rule>/<wildcards>.tsv, or logs/benchmarks/<rule>.tsv for a rule without wildcards). Each is a
tab-separated table with one row per repeat; its columns are s (wall seconds), h:m:s, max_rss / max_vms / max_uss /
max_pss (MiB), io_in / io_out (MiB), mean_load (% of one core) and cpu_time (s). A job that ends before its first
memory sample gets NA in every column after h:m:s (snakemake/benchmark.py, BenchmarkRecord.get_benchmarks).

Part 2 times the core library function of each heavy stage in this process. It uses the embedded default's
parameters (params.yaml) on a small generated clip set, at three work sizes each, and fits seconds ~ work^k:

    train_tokenizer   larp.tokenizer.train.train_tokenizer   seconds per step vs batch (clips per step)
    train_generator   larp.generator.train.train_generator   seconds per step vs sequence length (tokens/video)
    encode_tokens     larp.tokenizer.encode.encode_store     seconds vs clips encoded
    evaluate_*        larp.metrics.realstats.feature_stats   seconds vs clips scored (detector features + stats)

The default run takes about 2 minutes on one thread:

    snakemake --cores 2 reproduce_table1             # the run whose stages part 1 reports (logs/benchmarks/)
    .venv/bin/python benchmarks/bench_pipeline.py --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TSV_NA = ["NA", "-"]  # Snakemake writes NA for a metric never sampled and "-" for a missing value
TSV_COLUMNS = {"s", "max_rss", "cpu_time", "mean_load"}  # of Snakemake's header (the extended format adds more)


# ---------------------------------------------------------------------------------------------------------------
# part 1: Snakemake benchmark files

def read_benchmarks(folder: str | Path) -> pd.DataFrame:
    """One row per benchmark file under ``folder`` (none if it does not exist): the stage (``rule`` or
    ``rule@wildcards``, from the path), the number of repeats, and the medians of s, max_rss, cpu_time and
    mean_load over the repeats. Values a repeat did not sample (NA) are NaN. Sorted by wall time, longest first."""
    folder, rows = Path(folder), []
    for path in sorted(folder.rglob("*.tsv")):
        rel = path.relative_to(folder)
        stage = rel.stem if len(rel.parts) == 1 else f"{rel.parts[0]}@{rel.stem}"
        table = pd.read_csv(path, sep="\t", na_values=TSV_NA)
        if not TSV_COLUMNS <= set(table.columns) or table.empty:
            raise ValueError(f"{path}: expected a Snakemake benchmark file (a header with {sorted(TSV_COLUMNS)} and "
                             f"one row per repeat) but found columns {list(table.columns)} and {len(table)} rows")
        rows.append({"stage": stage, "repeats": len(table),
                     **{c: float(table[c].median()) for c in ("s", "max_rss", "cpu_time", "mean_load")}})
    columns = ["stage", "repeats", "s", "max_rss", "cpu_time", "mean_load"]
    return pd.DataFrame(rows, columns=columns).sort_values("s", ascending=False, ignore_index=True)


def print_stages(table: pd.DataFrame, folder: Path) -> None:
    print(f"== per stage: Snakemake benchmark files under {folder} ({len(table)} jobs)")
    if table.empty:
        print("   none found: run the pipeline first (snakemake --cores 2 reproduce_table1 writes them)")
        return
    fmt = lambda v, spec: "n/a" if pd.isna(v) else format(v, spec)  # noqa: E731
    print(f"   {'stage':<38} {'wall s':>9} {'peak RSS MiB':>13} {'CPU s':>9} {'load %':>7}")
    for r in table.itertuples():
        print(f"   {r.stage:<38} {fmt(r.s, '9.1f')} {fmt(r.max_rss, '13.0f')} {fmt(r.cpu_time, '9.1f')} "
              f"{fmt(r.mean_load, '7.0f')}")
    print(f"   {'sum of wall times (one job at a time)':<38} {table['s'].sum():9.1f}")
    if table["max_rss"].notna().any():
        top = table.loc[table["max_rss"].idxmax()]
        print(f"   largest peak RSS: {top['max_rss']:.0f} MiB ({top['stage']})")


# ---------------------------------------------------------------------------------------------------------------
# part 2: scaling of the heaviest stages' core functions

@dataclasses.dataclass
class Scaling:
    stage: str
    measure: str  # what `seconds` is: "s/step" or "s" (the whole call)
    work: str  # what `sizes` count
    sizes: list[int]
    seconds: list[float]
    rate_unit: str  # what `rates` count per second
    rates: list[float]

    @property
    def exponent(self) -> float:
        """k of seconds = a * work^k, least squares in log-log."""
        return float(np.polyfit(np.log(self.sizes), np.log(self.seconds), 1)[0])


def step_seconds(train: Callable[[Callable[[dict, int], None]], object], warmup: int) -> float:
    """Median seconds per training step: ``train(log)`` must call ``log`` after every step (log_every = 1). The
    trainers' own per-step lines are not printed."""
    stamps: list[float] = []
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        train(lambda metrics, step: stamps.append(time.perf_counter()))
    gaps = np.diff([start, *stamps])[warmup:]
    if len(gaps) == 0:
        raise ValueError(f"expected more than {warmup} logged steps but found {len(stamps)}")
    return float(np.median(gaps))


class FirstVideos:
    """The first ``n`` videos of a clip store (ClipStore's read interface), to vary the work of encode_store."""

    def __init__(self, store, n: int):
        if n > len(store):
            raise ValueError(f"{store}: asked for {n} videos but the store holds {len(store)}")
        self.store, self.n = store, n

    def __len__(self) -> int:
        return self.n

    def __getattr__(self, name):
        return getattr(self.store, name)


def make_clip_store(params: dict, work: Path, threads: int) -> Path:
    """A small clip store from the generated set: the embedded default's videos and clip geometry, 8 groups of one
    video per class (split 1: 1 training group, 7 test groups)."""
    from larp.data.clips import ClipConfig, extract_clips
    from larp.data.synthetic import SyntheticConfig, make_synthetic

    section = {**params["synthetic"], "groups": 8, "clips_per_group": 1}
    make_synthetic(SyntheticConfig.from_params(section), work / "synthetic", threads=threads)
    ds = dict(kind="synthetic", root=str(work / "synthetic"), split=1, annotations=None, train_split="train",
              test_split="val")
    extract_clips("synthetic", ds, ClipConfig.from_params(params["clips"]), work / "clips", threads=threads)
    return work / "clips"


def scale_tokenizer(params: dict, clips: Path, work: Path, sizes: Sequence[int], steps: int) -> Scaling:
    from larp.config import variant_section
    from larp.data.clips import ClipStore
    from larp.tokenizer.train import train_tokenizer

    store = ClipStore(clips, "train")
    seconds = []
    for batch in sizes:
        section = {**variant_section(params, "tokenizer", "tokenizers", "larp"), "steps": steps + 2, "log_every": 1,
                   "batch_size": batch, "checkpoint_every": 10**9}
        seconds.append(step_seconds(lambda log, s=section, b=batch: train_tokenizer(
            s, params["clips"], [store], work_dir=work / f"tok-{b}", seed=0,
            device="cpu", log=log), warmup=2))
    return Scaling("train_tokenizer", "s/step", "clips per step (batch)", list(sizes), seconds, "clips/s",
                   [b / s for b, s in zip(sizes, seconds)])


def scale_generator(params: dict, work: Path, sizes: Sequence[int], steps: int) -> Scaling:
    from larp.config import variant_section
    from larp.generator.train import TokenData, train_generator

    section = {**variant_section(params, "generator", "generators", "class-larp"), "steps": steps + 2,
               "log_every": 1, "checkpoint_every": 10**9}
    vocab, classes = params["tokenizer"]["model"]["codebook_size"], params["synthetic"]["num_classes"]
    rng, seconds = np.random.default_rng(0), []
    for n in sizes:
        data = TokenData(tokens=rng.integers(0, vocab, (256, n), dtype=np.uint16),
                         cond=rng.integers(0, classes, 256), meta={"num_tokens": n, "codebook_size": vocab,
                                                                   "num_classes": classes})
        seconds.append(step_seconds(lambda log, d=data, k=n: train_generator(
            section, d, work_dir=work / f"gen-{k}", seed=0, device="cpu", log=log), warmup=2))
    batch = section["batch_size"]
    return Scaling("train_generator", "s/step", f"tokens per video (batch {batch})", list(sizes), seconds,
                   "tokens/s", [batch * n / s for n, s in zip(sizes, seconds)])


def scale_encode(params: dict, clips: Path, videos: Sequence[int]) -> Scaling:
    import torch

    from larp.config import variant_section
    from larp.data.clips import ClipStore, chunk_pool
    from larp.tokenizer.encode import encode_store
    from larp.tokenizer.model import LARPTokenizer
    from larp.tokenizer.train import build_config

    torch.manual_seed(0)
    model = LARPTokenizer(build_config(variant_section(params, "tokenizer", "tokenizers", "larp"),
                                       params["clips"])).eval()
    store, tok = ClipStore(clips, "test"), params["tokens"]
    run = lambda n: encode_store(model, FirstVideos(store, n), batch=tok["batch_size"],  # noqa: E731
                                 flip=tok["flip_augment"], context=tok["fp_context_frames"], device="cpu")
    run(min(videos))  # warm-up
    sizes, seconds = [], []
    for n in videos:
        start = time.perf_counter()
        out = run(n)
        seconds.append(time.perf_counter() - start)
        sizes.append(len(out["tokens"]))
        assert sizes[-1] == len(chunk_pool(FirstVideos(store, n), model.cfg.frames)) * (1 + tok["flip_augment"])
    return Scaling("encode_tokens", "s", "clips encoded (chunks x flips)", sizes, seconds, "clips/s",
                   [n / s for n, s in zip(sizes, seconds)])


def scale_features(params: dict, clips: Path, sizes: Sequence[int]) -> Scaling:
    import torch

    from larp.data.clips import ClipStore, chunk_pool, to_float_video
    from larp.metrics.detectors import ClassifierConfig, ClassifierDetector, VideoClassifier
    from larp.metrics.realstats import feature_stats

    store, frames = ClipStore(clips, "test"), params["clips"]["frames"]
    clf, batch = params["detector"]["classifier"], params["evaluation"]["batch_size"]
    pool = chunk_pool(store, frames)
    torch.manual_seed(0)
    det = ClassifierDetector(VideoClassifier(ClassifierConfig(
        num_classes=store.num_classes, width=clf["width"], feature_dim=clf["feature_dim"], frames=frames,
        resolution=clf["resolution"])), "bench")

    def run(n: int) -> None:
        windows = [pool[i % len(pool)] for i in range(n)]  # the generated set's test chunks, repeated as needed
        feature_stats(det, (to_float_video(store.read_many(windows[i:i + batch], frames))
                            for i in range(0, n, batch)))

    run(batch)  # warm-up
    seconds = []
    for n in sizes:
        start = time.perf_counter()
        run(n)
        seconds.append(time.perf_counter() - start)
    return Scaling("evaluate_* (FVD)", "s", f"clips scored ({det.name}, batch {batch})", list(sizes), seconds,
                   "clips/s", [n / s for n, s in zip(sizes, seconds)])


def print_scaling(results: Sequence[Scaling], threads: int) -> None:
    print(f"== scaling of the heaviest stages' core functions (embedded default parameters, {threads} thread(s))")
    print(f"   {'stage':<17} {'work':<36} {'size':>6} {'seconds':>14} {'rate':>18}")
    for r in results:
        for size, sec, rate in zip(r.sizes, r.seconds, r.rates):
            print(f"   {r.stage:<17} {r.work:<36} {size:6d} {sec:8.3f} {r.measure:<5} {rate:9.1f} {r.rate_unit}")
    print("   fitted exponent k in seconds ~ work^k (1 = linear; < 1: fixed costs or better vectorisation at size)")
    for r in results:
        print(f"   {r.stage:<17} k = {r.exponent:5.2f}  over {r.work} {min(r.sizes)}-{max(r.sizes)}")


# ---------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "logs" / "benchmarks",
                        help="folder of Snakemake benchmark files (part 1)")
    parser.add_argument("--params", nargs="+", default=[str(ROOT / "params.yaml")],
                        help="parameter files merged in order (part 2 uses their values)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (the machine is shared)")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per size, after 2 warm-up steps")
    parser.add_argument("--no-scaling", action="store_true", help="print part 1 only")
    args = parser.parse_args(argv)

    print_stages(read_benchmarks(args.benchmarks), args.benchmarks)
    if args.no_scaling:
        return 0

    import torch
    from threadpoolctl import threadpool_limits  # installed with mlflow's scikit-learn; caps numpy's BLAS

    from larp.config import load_params

    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    with threadpool_limits(limits=args.threads), tempfile.TemporaryDirectory(prefix="bench_pipeline-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        clips = make_clip_store(params, work, args.threads)
        print(f"   (generated {work / 'clips'} in {time.perf_counter() - start:.1f} s)")
        results = [
            scale_tokenizer(params, clips, work, sizes=(2, 4, 8, 16), steps=args.steps),
            scale_generator(params, work, sizes=(64, 128, 256, 512), steps=args.steps),
            scale_encode(params, clips, videos=(8, 16, 32, 64)),
            scale_features(params, clips, sizes=(256, 512, 1024)),
        ]
    print_scaling(results, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
