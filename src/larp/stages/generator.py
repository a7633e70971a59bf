"""Stage functions behind ``workflow/scripts/train_generator.py`` and ``sample_videos.py``.

Each resolves its generator variant from params, opens its inputs, runs the library, publishes its outputs atomically
(training: rank 0 only, after every rank finished) and mirrors metrics and figures to MLflow.

Sampling protocols (docs/official-code-facts.md §6):
- class-conditional (gFVD, UCF-101): ``num_videos`` real clips are drawn with ``random.Random(clips.gfvd_seed)`` from
  the non-overlapping chunk pool of the dataset's TRAIN split; their labels condition one generated video each.
- frame prediction (K600): clips drawn the same way from the TEST split; condition = the first
  ``fp_context_frames`` frames padded to the clip length by repeating the last (paper App. A.2), encoded with
  DETERMINISTIC SVQ, as the training conditions were. The official sampler encodes stochastically (facts §6, §8.6):
  ``sampling.stochastic_condition: true`` reproduces that. Frame prediction has no CFG (facts §5).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config import variant_section
from ..data.clips import ClipStore, chunk_pool, sample_chunks
from ..errors import StageError
from ..generator.presets import count_parameters
from ..generator.sampling import sample_videos
from ..generator.train import build_config, evaluate_nll, load_tokens, train_generator, training_section
from ..generator.video_io import write_class_grids, write_samples_mp4
from ..io import atomic_outputs, save_weights, write_json
from ..models import load_generator
from ..runtime import barrier, git_commit, init_distributed, resolve_device, set_seed, stage_seed
from ..tracking import CurveLog, curves_path, tracker_for
from .checks import check_tokens


def run_train_generator(params: Mapping[str, Any], variant: str, *, tokens: str | Path, work_dir: str | Path,
                        out_dir: str | Path, metrics_path: str | Path, stop_after: int | None = None) -> dict[str, Any]:
    """Train generator variant ``variant`` on the token folder ``tokens`` (results/tokens/<its tokenizer>/<its
    dataset>: {train,test}.npz + meta.json) and publish weights + metrics."""
    section = variant_section(params, "generator", "generators", variant)
    train_cfg = training_section(section)
    device = resolve_device(params["run"]["device"])
    dist = init_distributed(device)
    seed = stage_seed(params, section)
    set_seed(seed)
    data = load_tokens(tokens, "train", section["mode"])
    check_tokens(data.meta, str(tokens), section["tokenizer"], section["dataset"])
    val = load_tokens(tokens, "test", section["mode"])

    t0 = time.perf_counter()
    resolved = {"generator": {**train_cfg, "model": build_config(section, data.meta).to_dict()},  # preset + model.*
                "run": params["run"], "variant": variant}
    with tracker_for(params, stage="train_generator", variant=variant, study="generator", resolved=resolved,
                     is_main=dist.is_main) as tracker:
        curves = CurveLog(work_dir, tracker.log_metrics)  # MLflow step metrics + the DVC plot's CSV
        result = train_generator(section, data, work_dir=work_dir, seed=seed, device=device, dist=dist, log=curves.log,
                                 stop_after=stop_after)
        barrier(dist)
        if (stop_after is not None and result.steps < result.training.steps) or not dist.is_main:
            return result.metrics
        evaluated = evaluate_nll(result.model, val, device=device, limit=section["eval_clips"],
                                 batch=result.training.batch_size)
        metrics = {**result.metrics, **evaluated, "steps": result.steps, "seconds": time.perf_counter() - t0,
                   "params_generator": count_parameters(result.model), "train_examples": len(data)}
        meta = {"model_config": result.config.to_dict(), "stage_config": train_cfg, "variant": variant,
                "mode": section["mode"], "tokenizer": section["tokenizer"], "dataset": section["dataset"],
                "token_meta": data.meta, "steps": result.steps, "seed": seed, "git_commit": git_commit(),
                "metrics": metrics}
        with atomic_outputs() as outs:  # one publication: the model folder (what later stages read) appears last
            tmp = outs.dir(out_dir)
            save_weights(tmp / "model.safetensors", result.model.state_dict(), meta)
            write_json(tmp / "config.json", meta)
            curves.write_csv(outs.file(curves_path(metrics_path, "train_generator")))
            write_json(outs.file(metrics_path), metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# sampling

def _real_clips(store: ClipStore, frames: int, n: int, seed: int, what: str) -> list[tuple[int, int]]:
    """The gFVD real-clip sample: ``n`` chunks of the non-overlapping pool, ``random.Random(seed).sample``."""
    pool = chunk_pool(store, frames)
    if n > len(pool):
        raise StageError(f"generator.sampling.num_videos = {n} but the {frames}-frame chunk pool of {store.root.name}/"
                         f"{store.split} ({what}) holds only {len(pool)} clips; set num_videos <= {len(pool)}")
    return sample_chunks(pool, n, seed)


def _check_inputs(section: Mapping[str, Any], gen_meta: Mapping[str, Any], tok_cfg: Any, store: ClipStore) -> None:
    """The generator, tokenizer and clip store must belong together; say which stage to re-run otherwise."""
    for key in ("mode", "tokenizer", "dataset"):
        if gen_meta[key] != section[key]:
            raise StageError(f"the generator was trained with {key} = {gen_meta[key]!r} but params say "
                             f"{section[key]!r}; re-run train_generator")
    gen_cfg = gen_meta["model_config"]
    if (gen_cfg["vocab_size"], gen_cfg["num_tokens"]) != (tok_cfg.codebook_size, tok_cfg.num_latents):
        raise StageError(f"the generator models {gen_cfg['num_tokens']} tokens over {gen_cfg['vocab_size']} codes but "
                         f"the tokenizer makes {tok_cfg.num_latents} over {tok_cfg.codebook_size}; re-run "
                         "encode_tokens and train_generator")
    if store.resolution != tok_cfg.resolution:
        raise StageError(f"clip store {store.root} holds {store.resolution}px clips but the tokenizer expects "
                         f"{tok_cfg.resolution}px; re-run extract_clips and the tokenizer with the same clips settings")


def run_sample_videos(params: Mapping[str, Any], variant: str, *, generator_dir: str | Path,
                      tokenizer_dir: str | Path, clips: str | Path, out_dir: str | Path,
                      metrics_path: str | Path, report_dir: str | Path) -> dict[str, Any]:
    """Sample generator variant ``variant`` by its mode's protocol; publish samples, metrics and report grids.

    ``tokenizer_dir`` is the variant's tokenizer (results/tokenizer/<its tokenizer>) and ``clips`` the clip store of
    its dataset (results/clips/<its dataset>): the real clips the protocol conditions on.
    """
    from ..models import load_tokenizer

    section = variant_section(params, "generator", "generators", variant)
    sampling, mode = section["sampling"], section["mode"]
    device = resolve_device(params["run"]["device"])
    model, gen_meta = load_generator(generator_dir, device=device)
    tokenizer, _ = load_tokenizer(tokenizer_dir, device=device)
    split = "train" if mode == "class" else "test"
    store = ClipStore(clips, split, section["dataset"])
    _check_inputs(section, gen_meta, tokenizer.cfg, store)
    protocol = "class-conditional gFVD" if mode == "class" else "frame prediction"
    windows = _real_clips(store, tokenizer.cfg.frames, sampling["num_videos"], params["clips"]["gfvd_seed"], protocol)
    context = int(gen_meta["token_meta"]["fp_context_frames"])

    t0 = time.perf_counter()
    resolved = {"sampling": sampling, "clips": params["clips"],
                "generator": {**(gen_meta["stage_config"] or {}), "model": gen_meta["model_config"]},
                "tokenizer": {"model": tokenizer.cfg.to_dict()}, "variant": variant}
    with tracker_for(params, stage="sample_videos", variant=variant, study="generator", resolved=resolved) as tracker:
        cfg = tokenizer.cfg
        with atomic_outputs() as outs:  # samples, report and metrics as one publication, the samples last
            tmp = outs.dir(out_dir)
            videos = np.lib.format.open_memmap(tmp / "videos.npy", mode="w+", dtype=np.uint8,
                                               shape=(len(windows), cfg.frames, cfg.resolution, cfg.resolution, 3))
            out = sample_videos(model, tokenizer, store, windows, videos, mode=mode, sampling=sampling,
                                context=context, device=device)
            videos.flush()
            for key in ("labels", "real_index", "tokens", "cond_tokens"):
                if key in out:
                    np.save(tmp / f"{key}.npy", out[key])
            seconds = time.perf_counter() - t0
            info = {"variant": variant, "mode": mode, "dataset": section["dataset"], "split": split,
                    "tokenizer": section["tokenizer"], "num_videos": len(windows), "frames": cfg.frames,
                    "resolution": cfg.resolution, "fp_context_frames": context if mode == "fp" else None,
                    "cfg_scale": sampling["cfg_scale"] if mode == "class" else 1.0, "sampling": sampling,
                    "gfvd_seed": params["clips"]["gfvd_seed"], "class_names": list(store.class_names),
                    "condition_svq": None if mode == "class" else
                    ("stochastic" if sampling["stochastic_condition"] else "deterministic")}
            write_json(tmp / "info.json", info)
            metrics = {"num_videos": len(windows), "seconds": seconds, "videos_per_s": len(windows) / seconds,
                       "sample_nll": out["sample_nll"],
                       "sample_codebook_usage": np.unique(out["tokens"]).size / cfg.codebook_size}
            real_of = (lambda idx: store.read_many([windows[i] for i in idx], cfg.frames)) if mode == "fp" else None
            rep = outs.dir(report_dir)
            files = write_class_grids(rep, videos, out["labels"], store.class_names,
                                      per_class=sampling["grid_videos_per_class"],
                                      max_classes=sampling["grid_classes"], real_of=real_of,
                                      title=f"{variant}: {protocol}, cfg {info['cfg_scale']}, "
                                            f"seed {sampling['seed']}")
            files.append(write_samples_mp4(rep / "samples.mp4", videos, out["labels"],
                                           per_class=sampling["grid_videos_per_class"],
                                           max_classes=sampling["grid_classes"], real_of=real_of))
            write_json(rep / "metrics.json", metrics)
            write_json(outs.file(metrics_path), metrics)
            del videos  # close the memory map before the folder is renamed
        tracker.log_metrics(metrics)
        for f in (files[0], files[-2], files[-1]):  # the first class GIF, the contact sheet, samples.mp4
            tracker.log_artifact(Path(report_dir) / f.name)
    return metrics
