"""Stage functions behind ``workflow/scripts/train_tokenizer.py`` and ``encode_tokens.py``.

Each resolves its variant from params, opens its inputs, runs the library, and publishes its outputs atomically
(rank 0 only, after every rank finished), then mirrors metrics and figures to MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import variant_section
from ..data.clips import ClipStore, across_classes, rfvd_windows
from ..errors import StageError
from ..generator.video_io import side_by_side, to_uint8, write_mp4
from ..io import atomic_outputs, save_weights, write_json
from ..models import load_tokenizer
from ..runtime import barrier, git_commit, init_distributed, resolve_device, set_seed, stage_seed
from ..tokenizer.presets import count_parameters
from ..tokenizer.train import build_config, evaluate_reconstruction, save_recon_figure, train_tokenizer
from ..tracking import CurveLog, curves_path, tracker_for


def run_train_tokenizer(params: Mapping[str, Any], variant: str, *, train_clips: Sequence[str | Path],
                        val_clips: str | Path, work_dir: str | Path, out_dir: str | Path, metrics_path: str | Path,
                        report_dir: str | Path, stop_after: int | None = None) -> dict[str, float]:
    """Train tokenizer variant ``variant`` on the clip stores ``train_clips`` (their train splits: the variant's
    ``train_datasets``), validate on ``val_clips`` (its ``val_dataset``, test split), and publish weights, metrics
    and a reconstruction figure."""
    section = variant_section(params, "tokenizer", "tokenizers", variant)
    clips = params["clips"]
    device = resolve_device(params["run"]["device"])
    dist = init_distributed(device)
    seed = stage_seed(params, section)
    set_seed(seed)
    if len(train_clips) != len(section["train_datasets"]):
        raise StageError(f"tokenizers.{variant}.train_datasets names {len(section['train_datasets'])} dataset(s) but "
                         f"{len(train_clips)} clip store(s) were given; pass one per dataset, in that order")
    train_stores = [ClipStore(store, "train", name) for store, name in zip(train_clips, section["train_datasets"])]
    val_store = ClipStore(val_clips, "test", section["val_dataset"])

    t0 = time.perf_counter()
    # every key after presets and overrides: the section plus the model configuration it builds (preset + model.*)
    resolved = {"tokenizer": {**section, "model": build_config(section, clips).to_dict()}, "clips": clips,
                "run": params["run"], "variant": variant}
    with tracker_for(params, stage="train_tokenizer", variant=variant, study="tokenizer", resolved=resolved,
                     is_main=dist.is_main) as tracker:
        curves = CurveLog(work_dir, tracker.log_metrics)  # MLflow step metrics + the DVC plot's CSV
        result = train_tokenizer(section, clips, train_stores, work_dir=work_dir, seed=seed, device=device, dist=dist,
                                 log=curves.log, stop_after=stop_after)
        barrier(dist)
        if stop_after is not None and result.steps < result.training.steps:
            return result.metrics
        if not dist.is_main:
            return result.metrics
        windows = rfvd_windows(val_store, clips["frames"], clips["rfvd_seed"])[: section["eval_clips"]]
        val, _, _ = evaluate_reconstruction(result.model, val_store, windows, device=device)
        # the figure and video show clips of different classes (the store's first windows are all one class)
        _, video, recon = evaluate_reconstruction(result.model, val_store, across_classes(val_store, windows, 8),
                                                  device=device)
        metrics = {**result.metrics, **val, "steps": result.steps, "seconds": time.perf_counter() - t0,
                   "params_tokenizer": count_parameters(result.model, include_prior=False),
                   "params_prior": count_parameters(result.model, include_prior=True)
                   - count_parameters(result.model, include_prior=False),
                   "num_tokens": result.config.num_latents}
        meta = {"model_config": result.config.to_dict(), "stage_config": section, "clips": clips, "variant": variant,
                "steps": result.steps, "seed": seed, "git_commit": git_commit(), "metrics": metrics}
        with atomic_outputs() as outs:  # one publication: the model folder (what later stages read) appears last
            tmp = outs.dir(out_dir)
            save_weights(tmp / "model.safetensors", result.model.state_dict(), meta)
            write_json(tmp / "config.json", meta)
            rep = outs.dir(report_dir)
            save_recon_figure(video, recon, rep / "reconstructions.png",
                              title=f"{variant}: val PSNR {val['val_psnr']:.2f} dB (deterministic SVQ)")
            write_mp4(rep / "reconstructions.mp4", side_by_side(to_uint8(video[:8]), to_uint8(recon[:8])))
            write_json(rep / "metrics.json", metrics)
            curves.write_csv(outs.file(curves_path(metrics_path, "train_tokenizer")))
            write_json(outs.file(metrics_path), metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        tracker.log_artifact(Path(report_dir) / "reconstructions.png")
        tracker.log_artifact(Path(report_dir) / "reconstructions.mp4")
    return metrics


def run_encode_tokens(params: Mapping[str, Any], *, tokenizer_dir: str | Path, clips: Sequence[str | Path],
                      out_dir: str | Path, metrics_path: str | Path) -> dict[str, Any]:
    """Encode the train and test chunks of each clip store in ``clips`` (results/clips/<dataset>) with deterministic
    SVQ; publish ``<out>/<dataset>/*.npz``, the dataset as its store records it (extract_clips' summary.json)."""
    import numpy as np

    from ..tokenizer.encode import encode_store, token_stats

    device = resolve_device(params["run"]["device"])
    model, meta = load_tokenizer(tokenizer_dir, device=device)
    cfg, tok = params["tokens"], Path(tokenizer_dir).name
    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    with tracker_for(params, stage="encode_tokens", variant=tok, study="tokenizer",
                     resolved={"tokens": cfg, "tokenizer": {"model": meta["model_config"]}}) as tracker:
        with atomic_outputs() as outs:  # the tokens folder and the metrics file as one publication, tokens last
            tmp = outs.dir(out_dir)
            trains = [ClipStore(c, "train") for c in clips]
            by_name = {s.dataset: s for s in trains}  # the dataset each store was extracted from
            if len(by_name) != len(trains):
                raise StageError(f"encode_tokens: two clip stores share a dataset name: {[str(c) for c in clips]}")
            for name, train in sorted(by_name.items()):
                (tmp / name).mkdir()
                for split in ("train", "test"):
                    store = train if split == "train" else ClipStore(train.root, split, name)
                    arrays = encode_store(model, store, batch=cfg["batch_size"], device=device,
                                          flip=cfg["flip_augment"] and split == "train",
                                          context=cfg["fp_context_frames"], desc=f"{name}/{split}")
                    np.savez(tmp / name / f"{split}.npz", **arrays)
                    stats = token_stats(arrays["tokens"], model.cfg.codebook_size)
                    metrics[f"{name}.{split}.clips"] = int(arrays["tokens"].shape[0])
                    metrics.update({f"{name}.{split}.{k}": v for k, v in stats.items()})
                write_json(tmp / name / "meta.json", {
                    "tokenizer": str(tokenizer_dir), "variant": tok, "dataset": store.dataset,
                    "num_tokens": int(arrays["tokens"].shape[1]),
                    "codebook_size": model.cfg.codebook_size, "num_classes": store.num_classes,
                    "class_names": list(store.class_names), "frames": model.cfg.frames,
                    "fp_context_frames": cfg["fp_context_frames"]})
            metrics["seconds"] = time.perf_counter() - t0
            write_json(outs.file(metrics_path), metrics)
        tracker.log_metrics({k.replace(".", "_"): v for k, v in metrics.items()})
    return metrics
