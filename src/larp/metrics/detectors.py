"""Feature detectors for Fréchet distances: the verified I3D TorchScript model and a trainable stand-in.

References:
- I3D: the StyleGAN-V TorchScript port of the tf-hub Kinetics-400 I3D used by the original FVD
  (universome/stylegan-v `src/metrics/frechet_video_distance.py`), called as LARP does (hywang66/LARP
  `utils/fvd/fvd.py`; docs/official-code-facts.md §6): input mapped from [0, 1] to [-1, 1], rescale=False, resize=True,
  return_features=True (400-d pre-softmax logits).
- The only checksum recorded for that file is its git blob SHA-1 in the LARP repository (facts §6 "FVD engine").
  Unlike StyleGAN-V, the file is a checked input: nothing is loaded before the checksum matches.
- VideoClassifier / ClassifierDetector: a small 3D-CNN for machines without the I3D weights. Its distances
  are NOT FVD; name them with `larp.metrics.fvd.metric_name` (e.g. "fvd[clf-synthetic]_2048_16f").
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from einops import reduce
from torch import Tensor, nn

from larp.dictconfig import DictIO
from larp.io import atomic_file, file_digest
from larp.metrics.recon import resize_videos


@runtime_checkable
class Detector(Protocol):
    """Maps videos (B, 3, T, H, W) float in [0, 1] to features (B, feature_dim) float64."""

    name: str
    feature_dim: int

    def features(self, videos: Tensor) -> Tensor: ...


def _check_videos(videos: Tensor, who: str, min_frames: int = 1) -> None:
    """Raise a clear error unless `videos` is a float (B, 3, T, H, W) tensor with values in [0, 1]."""
    if videos.ndim != 5 or videos.shape[1] != 3 or not videos.is_floating_point():
        raise ValueError(f"{who}: expected float videos (B, 3, T, H, W) but found {videos.dtype} {tuple(videos.shape)}")
    if videos.shape[2] < min_frames:
        raise ValueError(f"{who}: expected at least {min_frames} frames but found {videos.shape[2]}")
    lo, hi = videos.min().item(), videos.max().item()
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{who}: expected pixel values in [0, 1] but found [{lo:.3g}, {hi:.3g}]; clamp or rescale first"
        )


# ----------------------------------------------------------------------------------------------------
# I3D (TorchScript), verified before loading

I3D_GIT_BLOB_SHA1 = "93daef59c7ae0e9e8f76225521407e60cbafa6aa"  # LARP utils/fvd/i3d_torchscript.pt (facts §6)
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"  # StyleGAN-V frechet_video_distance.py
I3D_FILENAME = "i3d_torchscript.pt"
I3D_MIN_FRAMES = 10  # the official FVD calculator refuses shorter clips (facts §6 "Frames")


class I3DChecksumError(ValueError):
    """The I3D TorchScript file is not the one LARP and StyleGAN-V used."""


def git_blob_sha1(path: str | os.PathLike) -> str:
    """Git blob SHA-1 of a file, the digest `git hash-object path` prints: sha1(b"blob <size>\\0" + bytes)."""
    path = Path(path)
    return file_digest(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


def verify_i3d(path: str | os.PathLike) -> None:
    """Raise I3DChecksumError unless `path` has the recorded git blob SHA-1 of the I3D TorchScript file."""
    found = git_blob_sha1(path)
    if found != I3D_GIT_BLOB_SHA1:
        raise I3DChecksumError(
            f"{path}: git blob SHA-1 is {found} but expected {I3D_GIT_BLOB_SHA1} (LARP/StyleGAN-V "
            f"i3d_torchscript.pt). Get the right file with larp.metrics.detectors.fetch_i3d(cache_dir) or from "
            f"{I3D_URL}, then check it with `git hash-object <file>`."
        )


def download_url(url: str, dest: Path) -> None:
    """Stream `url` into the file `dest` (no verification; see fetch_i3d).

    Not pooch: its ``known_hash`` checks a digest of the file's content (sha256, md5, ...), while the only checksum
    on record for this file is its git blob SHA-1 (facts §6), a digest of a header plus the content; so pooch could
    not verify it, and the standard library's streaming copy is all that is left to do."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


def fetch_i3d(cache_dir: str | os.PathLike, *, downloader: Callable[[str, Path], None] = download_url) -> Path:
    """Return `cache_dir/i3d_torchscript.pt`, downloading it from the StyleGAN-V URL if absent.

    A one-time setup helper (the pipeline treats the file as a checked input, never a runtime download).
    The download goes to a sibling temp file, is verified, and only then renamed into place, so a failed
    or wrong download leaves nothing in the cache. An existing file with a wrong checksum is refused.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / I3D_FILENAME
    if final.exists():
        verify_i3d(final)
        return final
    with atomic_file(final) as tmp:  # removed again if the download or the verification fails
        downloader(I3D_URL, tmp)
        verify_i3d(tmp)
    return final


class I3DDetector:
    """Kinetics-400 I3D features for FVD, called as LARP's FVD engine calls it (facts §6)."""

    name = "i3d"
    feature_dim = 400

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu"):
        verify_i3d(path)  # before torch.jit.load: never deserialise an unverified file
        self.device = torch.device(device)
        self.model = torch.jit.load(str(path), map_location=self.device).eval()

    @torch.no_grad()
    def features(self, videos: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [0, 1] -> (B, 400) float64 pre-softmax logits; the model resizes to 224 itself."""
        _check_videos(videos, "I3DDetector.features", I3D_MIN_FRAMES)
        x = (videos.to(self.device, torch.float32) - 0.5) * 2  # [0, 1] -> [-1, 1] (LARP utils/fvd/fvd.py)
        feats = self.model(x, rescale=False, resize=True, return_features=True)  # (B, 400)
        return feats.to("cpu", torch.float64)


# ----------------------------------------------------------------------------------------------------
# Trainable stand-in: a small 3D-CNN video classifier


@dataclass(frozen=True)
class ClassifierConfig(DictIO):
    num_classes: int = 2  # synthetic motion classes by default; 101 for UCF-101
    width: int = 16  # channels of the first stage; stages use width x (1, 2, 4, 8)
    feature_dim: int = 128  # penultimate feature size (I3D uses 400); kept small so covariances stay well sampled
    frames: int = 16  # clip length the detector accepts (LARP clips are 16 frames, facts §6)
    resolution: int = 64  # inputs are resized to this square size, like I3D's internal resize



class VideoClassifier(nn.Module):
    """4 stages of Conv3d(3x3x3)/BN/ReLU, each halving H and W (stages 2-4 also halve T), global average
    pooling, a Linear feature layer (its pre-activation output is the detector feature, dense like I3D's
    logits), then ReLU and a Linear classifier."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        chans = [3] + [config.width * m for m in (1, 2, 4, 8)]
        strides = [(1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)]
        self.stages = nn.Sequential(*[
            nn.Sequential(
                nn.Conv3d(c_in, c_out, kernel_size=3, stride=s, padding=1, bias=False),
                nn.BatchNorm3d(c_out),
                nn.ReLU(inplace=True),
            )
            for c_in, c_out, s in zip(chans[:-1], chans[1:], strides)
        ])
        self.feature = nn.Linear(chans[-1], config.feature_dim)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, videos: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [0, 1] -> (B, feature_dim) penultimate pre-activations."""
        h = self.stages(videos * 2 - 1)  # (B, 8w, T/8, H/16, W/16)
        h = reduce(h, "b c t h w -> b c", "mean")  # (B, 8w)
        return self.feature(h)  # (B, feature_dim)

    def forward(self, videos: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [0, 1] -> logits (B, num_classes)."""
        return self.head(F.relu(self.features(videos)))


def train_classifier(
    model: VideoClassifier,
    sample_batch: Callable[[int], tuple[Tensor, Tensor]],
    steps: int,
    lr: float,
    *,
    weight_decay: float,
    log: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train `model` with cross-entropy, AdamW and a cosine learning-rate decay to 0 over `steps`.

    sample_batch(step) -> (videos (B, 3, T, H, W) float in [0, 1], labels (B,) long). `log(step, metrics)`
    is called every step with loss, acc and lr. Returns the loss and accuracy averaged over the last
    (up to) 10 steps, and the step count. The model is left in eval mode.
    """
    if steps <= 0:
        raise ValueError(f"train_classifier: expected a positive number of steps but found {steps}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    recent: list[tuple[float, float]] = []
    for step in range(steps):
        videos, labels = sample_batch(step)
        _check_videos(videos, "train_classifier sample_batch")
        logits = model(videos)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lr_now = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        acc = (logits.argmax(dim=1) == labels).float().mean().item()
        recent = (recent + [(loss.item(), acc)])[-10:]
        if not math.isfinite(recent[-1][0]):
            raise FloatingPointError(f"train_classifier: loss became {recent[-1][0]} at step {step}; lower lr")
        if log is not None:
            log(step, {"loss": recent[-1][0], "acc": acc, "lr": lr_now})
    model.eval()
    return {
        "loss": sum(r[0] for r in recent) / len(recent),
        "train_acc": sum(r[1] for r in recent) / len(recent),
        "steps": steps,
    }


@torch.no_grad()
def classifier_accuracy(model: VideoClassifier, batches: Iterable[tuple[Tensor, Tensor]]) -> float:
    """Top-1 accuracy of `model` (in eval mode) over (videos, labels) batches."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for videos, labels in batches:
        correct += (model(videos).argmax(dim=1) == labels).sum().item()
        total += labels.numel()
    model.train(was_training)
    if total == 0:
        raise ValueError("classifier_accuracy: expected at least one labelled clip but found none")
    return correct / total


_TAG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ClassifierDetector:
    """Penultimate VideoClassifier features as a Detector named f"clf-{tag}" (never plain "FVD")."""

    def __init__(self, model: VideoClassifier, tag: str):
        if not _TAG.match(tag):
            raise ValueError(f"ClassifierDetector: expected a tag matching {_TAG.pattern} but found {tag!r}")
        self.model = model.eval()
        self.name = f"clf-{tag}"
        self.feature_dim = model.config.feature_dim

    @torch.no_grad()
    def features(self, videos: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [0, 1] -> (B, feature_dim) float64; frames must match the config and frames are
        resized (bilinear) to the config resolution, as I3D resizes to 224."""
        cfg = self.model.config
        _check_videos(videos, f"{self.name} features")
        if videos.shape[2] != cfg.frames:
            raise ValueError(f"{self.name}: expected {cfg.frames} frames but found {videos.shape[2]}")
        if videos.shape[-2:] != (cfg.resolution, cfg.resolution):
            videos = resize_videos(videos, cfg.resolution)
        device = next(self.model.parameters()).device
        return self.model.features(videos.to(device, torch.float32)).to("cpu", torch.float64)
