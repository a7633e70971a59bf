"""Stage functions behind ``workflow/scripts/{train_detector,evaluate_tokenizer,evaluate_generator}.py``.

Evaluation protocols (docs/official-code-facts.md §6; paper §4.1, Table 1):
- rFVD (``evaluate_tokenizer``): one seeded random window per video of ``evaluation.rfvd_split`` of the tokenizer's
  ``val_dataset`` (official: the UCF-101 TRAIN list, facts §6/§8.7); reals = those clips, fakes = their
  reconstructions with deterministic (argmax) SVQ, clamped to [0, 1] (`eval/eval_larp_tokenizer.py --det`). PSNR
  (per clip, then mean), SSIM (per RGB frame) and LPIPS (VGG, per frame; when the lpips package is installed)
  on the same pairs.
- class-conditional gFVD (``evaluate_generator``, mode class): the N real clips ``sample_videos`` conditioned on,
  re-derived here as ``Random(clips.gfvd_seed)`` chunks of the TRAIN split's non-overlapping pool and checked
  against ``real_index.npy``; fakes = the N generated videos (`sample.py sample_videos`).
- frame-prediction FVD (mode fp): the same with TEST-split chunks; both videos resized to ``evaluation.fp_resolution``
  (64x64 officially) and compared on ALL frames, the regenerated context frames included (`sample.py
  predict_frames`, facts §6, §8.6).
Every distance is named by :func:`larp.metrics.fvd.metric_name`, so a classifier distance is never called "FVD".
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import variant_section
from ..data.clips import ClipStore, chunk_pool, random_window, rfvd_windows, sample_chunks, to_float_video
from ..errors import StageError
from ..io import atomic_outputs, file_digest, load_weights, read_json, save_weights, write_json
from ..metrics.detectors import (I3D_GIT_BLOB_SHA1, ClassifierConfig, ClassifierDetector, Detector, I3DChecksumError,
                                 I3DDetector, VideoClassifier, classifier_accuracy, train_classifier, verify_i3d)
from ..metrics.fvd import FeatureStats, fvd_from_stats, metric_name
from ..metrics.health import HealthAccumulator, permute_tokens
from ..metrics.realstats import (RealStatsKey, cached_real_stats, feature_stats, load_real_stats, save_real_stats,
                                 store_fingerprint, windows_digest)
from ..metrics.recon import psnr_per_clip, resize_videos, ssim_per_frame
from ..runtime import git_commit, resolve_device, set_seed
from .checks import check_dataset
from ..tracking import tracker_for

LOG_EVERY = 50  # classifier training steps between logged metrics
FP_RESIZE = "bilinear-antialias"  # larp.metrics.recon.resize_videos (torchvision Resize, official FP protocol)


def detector_tag(dataset: str) -> str:
    """Classifier detector tag of a dataset name ("UCF_101" -> "ucf-101"); the detector is "clf-<tag>"."""
    return dataset.lower().replace("_", "-").replace(".", "-")


def sha256_file(path: str | Path) -> str:
    return file_digest(path, hashlib.sha256())


def _clip_batches(store: ClipStore, windows: Sequence[tuple[int, int]], frames: int, batch: int, device: str,
                  size: int | None = None) -> Iterator[torch.Tensor]:
    """Float videos (B, 3, T, H, W) in [0, 1] of ``windows``, resized to ``size`` when given."""
    for i in range(0, len(windows), batch):
        video = to_float_video(store.read_many(windows[i:i + batch], frames)).to(device)
        yield resize_videos(video, size) if size else video


def _array_batches(videos: np.ndarray, batch: int, device: str, size: int | None = None) -> Iterator[torch.Tensor]:
    """Float videos (B, 3, T, H, W) of a uint8 (N, T, H, W, 3) array (e.g. a memory map)."""
    for i in range(0, len(videos), batch):
        video = to_float_video(np.array(videos[i:i + batch])).to(device)  # a writable copy
        yield resize_videos(video, size) if size else video


# ---------------------------------------------------------------------------------------------------------------
# train_detector

def _record_i3d(section: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """Verify the I3D TorchScript file named by detector.i3d_path; return its detector.json record."""
    path = section["i3d_path"]
    if path is None or not Path(path).is_file():
        raise StageError(
            f"detector.kind is i3d but detector.i3d_path = {path!r} is not a file; download it once with "
            "`python -c \"from larp.metrics.detectors import fetch_i3d; print(fetch_i3d('data/i3d'))\"` (verified "
            "before it is kept) and set detector.i3d_path: data/i3d/i3d_torchscript.pt (README, FVD detectors)")
    try:
        verify_i3d(path)
    except I3DChecksumError as exc:
        raise StageError(str(exc)) from exc
    return {"kind": "i3d", "name": I3DDetector.name, "feature_dim": I3DDetector.feature_dim, "dataset": dataset,
            "path": str(path), "weights_hash": I3D_GIT_BLOB_SHA1}


def run_train_detector(params: Mapping[str, Any], dataset: str, *, clips: str | Path, out_dir: str | Path,
                       metrics_path: str | Path) -> dict[str, Any]:
    """Publish the feature detector of ``dataset`` (clip store ``clips``) in ``out_dir`` (detector.json, +
    model.safetensors).

    kind i3d: verify the I3D file's checksum and record it (no training). kind classifier: train a
    VideoClassifier on random windows (with random horizontal flips) of the dataset's train split and report its
    top-1 accuracy on one seeded window per test-split video.
    """
    section = params["detector"]
    t0 = time.perf_counter()
    with tracker_for(params, stage="train_detector", variant=dataset, study="detector",
                     resolved={"detector": section, "clips": params["clips"], "run": params["run"]}) as tracker:
        with atomic_outputs() as outs:  # the detector folder and the metrics file as one publication, folder last
            tmp = outs.dir(out_dir)
            if section["kind"] == "i3d":
                info = _record_i3d(section, dataset)
                metrics: dict[str, Any] = {"kind": "i3d", "feature_dim": info["feature_dim"]}
                write_json(tmp / "detector.json", info)
            else:
                info, metrics, model = _train_classifier(params, dataset, Path(clips), tracker)
                save_weights(tmp / "model.safetensors", model.state_dict(),
                             {"classifier_config": model.config.to_dict(), "dataset": dataset,
                              "git_commit": git_commit(), "metrics": metrics})
                info["weights_hash"] = sha256_file(tmp / "model.safetensors")
                write_json(tmp / "detector.json", info)
            metrics["seconds"] = time.perf_counter() - t0
            write_json(outs.file(metrics_path), metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics


def _train_classifier(params: Mapping[str, Any], dataset: str, clips: Path,
                      tracker: Any) -> tuple[dict[str, Any], dict[str, Any], VideoClassifier]:
    cfg_in, frames = params["detector"]["classifier"], params["clips"]["frames"]
    device = resolve_device(params["run"]["device"])
    seed = int(params["run"]["seed"])
    set_seed(seed)
    train, test = ClipStore(clips, "train", dataset), ClipStore(clips, "test", dataset)
    cfg = ClassifierConfig(num_classes=train.num_classes, width=cfg_in["width"], feature_dim=cfg_in["feature_dim"],
                           frames=frames, resolution=cfg_in["resolution"])
    model = VideoClassifier(cfg).to(device)
    rng, batch = np.random.default_rng(seed), cfg_in["batch_size"]

    def sample_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        windows = [random_window(train, rng, frames) for _ in range(batch)]
        video = to_float_video(train.read_many(windows, frames))  # (B, 3, T, H, W)
        flip = torch.from_numpy(rng.random(batch) < 0.5)
        video[flip] = video[flip].flip(-1)
        labels = torch.tensor([train.label(i) for i, _ in windows])
        return resize_videos(video, cfg.resolution).to(device), labels.to(device)

    def log(step: int, m: dict) -> None:
        if step % LOG_EVERY == 0 or step == cfg_in["steps"] - 1:
            tracker.log_metrics({f"train_{k}": v for k, v in m.items()}, step=step)

    trained = train_classifier(model, sample_batch, cfg_in["steps"], cfg_in["lr"],
                               weight_decay=cfg_in["weight_decay"], log=log)
    windows = rfvd_windows(test, frames, seed)  # one seeded window per test video
    labels = torch.tensor([test.label(i) for i, _ in windows])
    batches = zip(_clip_batches(test, windows, frames, batch, device, cfg.resolution), labels.split(batch))
    test_acc = classifier_accuracy(model, ((v, y.to(device)) for v, y in batches))
    metrics = {"kind": "classifier", "train_loss": trained["loss"], "train_acc": trained["train_acc"],
               "test_acc": test_acc, "test_clips": len(windows), "steps": trained["steps"],
               "num_classes": cfg.num_classes, "params_detector": sum(p.numel() for p in model.parameters())}
    info = {"kind": "classifier", "name": f"clf-{detector_tag(dataset)}", "tag": detector_tag(dataset),
            "feature_dim": cfg.feature_dim, "dataset": dataset, "config": cfg.to_dict(), "train_split": "train",
            "test_acc": test_acc, "test_clips": len(windows)}
    return info, metrics, model


def load_detector(detector_dir: str | Path, kind: str, device: str = "cpu") -> tuple[Detector, dict[str, Any]]:
    """The detector published by train_detector in ``detector_dir`` and its detector.json record.

    ``kind`` is detector.kind of the current params; a folder holding the other kind, or classifier weights whose
    hash differs from the recorded one, is refused (re-run train_detector). I3D is re-verified before loading.
    """
    detector_dir = Path(detector_dir)
    info_path = detector_dir / "detector.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"no detector at {detector_dir} (expected detector.json); run train_detector first")
    info = read_json(info_path)
    if info["kind"] != kind:
        raise StageError(f"{detector_dir} holds a {info['kind']} detector but detector.kind is {kind}; "
                         "re-run train_detector")
    if kind == "i3d":
        try:
            return I3DDetector(info["path"], device=device), info
        except I3DChecksumError as exc:
            raise StageError(str(exc)) from exc
    weights = detector_dir / "model.safetensors"
    if sha256_file(weights) != info["weights_hash"]:
        raise StageError(f"{weights} is not the file train_detector recorded (SHA-256 differs); re-run train_detector")
    state, meta = load_weights(weights, device=device)
    model = VideoClassifier(ClassifierConfig.from_dict(meta["classifier_config"])).to(device)
    model.load_state_dict(state)
    return ClassifierDetector(model, info["tag"]), info


def _detector_for(params: Mapping[str, Any], detector_dir: str | Path, dataset: str, frames: int,
                  device: str) -> tuple[Detector, dict[str, Any]]:
    """The detector in ``detector_dir``, which must be ``dataset``'s (a classifier is trained per dataset)."""
    detector, info = load_detector(detector_dir, params["detector"]["kind"], device)
    check_dataset(f"the detector in {detector_dir}", info.get("dataset", dataset), dataset, "the scored dataset")
    if info["kind"] == "classifier" and info["config"]["frames"] != frames:
        raise StageError(f"the {info['name']} detector takes {info['config']['frames']}-frame clips but the clips "
                         f"scored have {frames}; re-run train_detector with clips.frames = {frames}")
    return detector, info


def _detector_record(info: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("name", "kind", "dataset", "feature_dim", "weights_hash", "test_acc", "test_clips", "path")
    return {k: info[k] for k in keep if k in info}


# ---------------------------------------------------------------------------------------------------------------
# evaluate_tokenizer

@torch.no_grad()
def _lpips(device: str) -> tuple[Any, str]:
    """(PerceptualLoss on ``device`` or None, status shown when it is unavailable)."""
    from ..errors import LPIPSUnavailable
    from ..tokenizer.losses import PerceptualLoss

    try:
        return PerceptualLoss().to(device), "ok"
    except LPIPSUnavailable:
        installed = importlib.util.find_spec("lpips") is not None
        return None, "n/a (lpips weights unavailable)" if installed else "n/a (lpips not installed)"


def _finite_mean(values: list[torch.Tensor]) -> float | None:
    """Mean of per-clip values; None when a clip is perfect (PSNR +inf), which JSON cannot hold."""
    x = torch.cat(values).double()
    return float(x.mean()) if torch.isfinite(x).all() else None


@torch.no_grad()
def run_evaluate_tokenizer(params: Mapping[str, Any], variant: str, *, tokenizer_dir: str | Path,
                           clips: str | Path, detector_dir: str | Path, cache_dir: str | Path,
                           out_path: str | Path) -> dict[str, Any]:
    """rFVD, PSNR, SSIM and LPIPS of tokenizer ``variant`` on its val_dataset (rFVD protocol, module docstring):
    ``clips`` is that dataset's clip store and ``detector_dir`` its train_detector output."""
    from ..models import load_tokenizer
    from ..tokenizer.presets import count_parameters

    section, ev = variant_section(params, "tokenizer", "tokenizers", variant), params["evaluation"]
    clip_cfg = params["clips"]
    dataset, split, batch = section["val_dataset"], ev["rfvd_split"], ev["batch_size"]
    device = resolve_device(params["run"]["device"])
    model, _ = load_tokenizer(tokenizer_dir, device=device)
    cfg = model.cfg
    store = ClipStore(clips, split, dataset)
    if store.resolution != cfg.resolution:
        raise StageError(f"clip store {store.root} holds {store.resolution}px clips but tokenizer {variant} expects "
                         f"{cfg.resolution}px; re-run extract_clips and train_tokenizer with the same clips settings")
    detector, info = _detector_for(params, detector_dir, dataset, cfg.frames, device)
    windows = rfvd_windows(store, cfg.frames, clip_cfg["rfvd_seed"])[: ev["rfvd_max_videos"] or None]
    key = RealStatsKey(detector=info["name"], detector_hash=info["weights_hash"], dataset=dataset,
                       store=store_fingerprint(store), split=split, protocol="rfvd", n=len(windows),
                       seed=clip_cfg["rfvd_seed"], frames=cfg.frames, resolution=store.resolution, resize="none",
                       windows=windows_digest(windows))
    t0 = time.perf_counter()
    with tracker_for(params, stage="evaluate_tokenizer", variant=variant, study="evaluation",
                     resolved={"evaluation": ev, "clips": clip_cfg, "tokenizer": section, "detector": info}) as tracker:
        real = load_real_stats(cache_dir, key)
        new_real = FeatureStats(detector.feature_dim) if real is None else None
        fake = FeatureStats(detector.feature_dim)
        lpips_net, lpips_status = _lpips(device)
        psnrs, ssims, lpips_sum, frames_seen = [], [], 0.0, 0
        for video in _clip_batches(store, windows, cfg.frames, batch, device):
            recon = model.reconstruct(video)[0]  # (B, 3, T, H, W) in [0, 1], deterministic SVQ
            if new_real is not None:
                new_real.update(detector.features(video))
            fake.update(detector.features(recon))
            psnrs.append(psnr_per_clip(recon, video).cpu())
            ssims.append(ssim_per_frame(recon, video).cpu())
            if lpips_net is not None:
                n_frames = video.shape[0] * video.shape[2]
                lpips_sum += lpips_net(recon, video).item() * n_frames  # the wrapper averages over B*T frames
                frames_seen += n_frames
        if new_real is not None:
            save_real_stats(cache_dir, key, new_real)
            real = new_real
        health = tokenizer_health(model, clips, ev["health"], cfg.frames, batch, device)
        name = metric_name(info["name"], "rfvd", len(windows), cfg.frames)
        metrics = {
            "stage": "evaluate_tokenizer", "variant": variant, "kind": cfg.kind, "dataset": dataset, "split": split,
            "protocol": "rfvd", "num_clips": len(windows), "frames": cfg.frames, "resolution": cfg.resolution,
            "seed": clip_cfg["rfvd_seed"], "svq": "deterministic", "detector": _detector_record(info),
            "metric": name, name: fvd_from_stats(fake, real), "psnr": _finite_mean(psnrs),
            "ssim": float(torch.cat(ssims).mean()), "lpips": lpips_sum / frames_seen if frames_seen else None,
            "lpips_status": lpips_status, "params_tokenizer": count_parameters(model, include_prior=False),
            "num_tokens": cfg.num_latents, "real_stats_cached": new_real is None, "health": health,
            "seconds": time.perf_counter() - t0,
        }
        write_json(out_path, metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}
                            | {f"health_{k}": v for k, v in health.items() if isinstance(v, (int, float))})
    return metrics


@torch.no_grad()
def tokenizer_health(model: Any, store_root: Path, section: Mapping[str, Any], frames: int, batch: int,
                     device: str) -> dict[str, Any]:
    """The health report (larp.metrics.health) of ``model`` on one seeded window per video of
    ``section['split']``: PSNR on all and moving pixels against the static mean/median frames, the PSNR drop under
    a token permutation, codebook usage. Deterministic SVQ, as every reconstruction metric."""
    store = ClipStore(store_root, section["split"])
    windows = rfvd_windows(store, frames, section["seed"])[: section["max_videos"] or None]
    acc = HealthAccumulator(model.cfg.codebook_size, section["moving_threshold"])
    perm_gen = torch.Generator().manual_seed(section["seed"])
    for video in _clip_batches(store, windows, frames, batch, device):
        recon, indices = model.reconstruct(video)
        permuted = model.decode_indices(permute_tokens(indices, perm_gen)).float().clamp(0, 1)
        acc.add(video, recon, permuted, indices)
    return {"split": section["split"], "num_clips": len(windows), "moving_threshold": section["moving_threshold"],
            "seed": section["seed"]} | acc.report()


# ---------------------------------------------------------------------------------------------------------------
# evaluate_generator

def _protocol_windows(store: ClipStore, real_index: np.ndarray, frames: int, seed: int) -> list[tuple[int, int]]:
    """The gFVD real windows, re-derived (Random(seed) chunk sample) and checked against the samples' real_index."""
    n = len(real_index)
    try:
        expected = sample_chunks(chunk_pool(store, frames), n, seed)
    except ValueError as exc:
        raise StageError(f"{store.root.name}/{store.split}: {exc}; re-run sample_videos with these clips") from exc
    if np.asarray(expected, np.int64).tolist() != np.asarray(real_index, np.int64).tolist():
        raise StageError(f"real_index.npy is not the Random({seed}) sample of {n} {frames}-frame chunks of "
                         f"{store.root.name}/{store.split}; re-run sample_videos with the current clips and params")
    return expected


def run_evaluate_generator(params: Mapping[str, Any], variant: str, *, samples_dir: str | Path,
                           generator_dir: str | Path, clips: str | Path, detector_dir: str | Path,
                           cache_dir: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Class-conditional gFVD or frame-prediction FVD of generator ``variant``'s samples (module docstring):
    ``clips`` is its dataset's clip store and ``detector_dir`` that dataset's train_detector output."""
    section, ev = variant_section(params, "generator", "generators", variant), params["evaluation"]
    mode, dataset, batch = section["mode"], section["dataset"], ev["batch_size"]
    samples_dir = Path(samples_dir)
    sinfo = read_json(samples_dir / "info.json")
    for k in ("mode", "dataset", "tokenizer"):
        if sinfo[k] != section[k]:
            raise StageError(f"{samples_dir} was sampled with {k} = {sinfo[k]!r} but params say {section[k]!r}; "
                             "re-run train_generator and sample_videos")
    videos = np.load(samples_dir / "videos.npy", mmap_mode="r")  # (N, T, H, W, 3) uint8
    n, frames = videos.shape[:2]
    split = "train" if mode == "class" else "test"
    store = ClipStore(clips, split, dataset)
    if videos.shape[2] != store.resolution:
        raise StageError(f"samples are {videos.shape[2]}px but clip store {store.root} holds {store.resolution}px "
                         "clips; re-run sample_videos")
    seed = params["clips"]["gfvd_seed"]
    windows = _protocol_windows(store, np.load(samples_dir / "real_index.npy"), frames, seed)
    size = ev["fp_resolution"] if mode == "fp" else None
    protocol = f"fp-fvd{size}" if mode == "fp" else "gfvd"
    device = resolve_device(params["run"]["device"])
    detector, info = _detector_for(params, detector_dir, dataset, frames, device)
    key = RealStatsKey(detector=info["name"], detector_hash=info["weights_hash"], dataset=dataset,
                       store=store_fingerprint(store), split=split, protocol=protocol, n=n, seed=seed, frames=frames,
                       resolution=size or store.resolution, resize=FP_RESIZE if size else "none",
                       windows=windows_digest(windows))
    gen_meta = read_json(Path(generator_dir) / "config.json")
    t0 = time.perf_counter()
    with tracker_for(params, stage="evaluate_generator", variant=variant, study="evaluation",
                     resolved={"evaluation": ev, "clips": params["clips"], "sampling": sinfo, "detector": info}
                     ) as tracker:
        real, cached = cached_real_stats(
            cache_dir, key, lambda: feature_stats(detector, _clip_batches(store, windows, frames, batch, device, size)))
        fake = feature_stats(detector, _array_batches(videos, batch, device, size))
        name = metric_name(info["name"], protocol, n, frames)
        metrics = {
            "stage": "evaluate_generator", "variant": variant, "mode": mode, "tokenizer": section["tokenizer"],
            "dataset": dataset, "split": split, "protocol": protocol, "num_clips": int(n), "frames": int(frames),
            "resolution": size or store.resolution, "resize": key.resize, "seed": seed,
            "cfg_scale": sinfo["cfg_scale"], "detector": _detector_record(info), "metric": name,
            name: fvd_from_stats(fake, real), "params_generator": gen_meta["metrics"]["params_generator"],
            "real_stats_cached": cached, "seconds": time.perf_counter() - t0,
        }
        write_json(out_path, metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics
