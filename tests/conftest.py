"""Shared test fixtures: tiny synthetic data generated once per session (no committed media)."""

from __future__ import annotations

from pathlib import Path

import pytest

# the tiny synthetic set: 3 classes x 8 groups x 1 clip, 20 frames of 24x32 (split 1: train g08, test g01-g07)
TINY_SYNTHETIC = dict(seed=0, num_classes=3, groups=8, clips_per_group=1, frames=20, height=24, width=32, fps=25,
                      codec="mpeg4", container="avi")
# clips of 8 frames at 16x16; small shards so the store has several
TINY_CLIPS = dict(frames=8, stride=1, resolution=16, max_frames_per_video=None, max_failed_fraction=0.05,
                  shard_frames=64, rfvd_seed=0, gfvd_seed=42)


@pytest.fixture(scope="session")
def tiny_synthetic_params() -> dict:
    """The params ``synthetic`` section of the tiny set (a copy)."""
    return dict(TINY_SYNTHETIC)


@pytest.fixture(scope="session")
def tiny_clips_params() -> dict:
    """The params ``clips`` section used for the tiny clip store (a copy)."""
    return dict(TINY_CLIPS)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny synthetic dataset in UCF-101 layout (read-only: copy before modifying)."""
    from larp.data.synthetic import SyntheticConfig, make_synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic"
    make_synthetic(SyntheticConfig(**TINY_SYNTHETIC), root, threads=1)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_synthetic: Path) -> dict:
    """The params ``datasets`` entry of the tiny synthetic set."""
    return dict(kind="synthetic", root=str(tiny_synthetic), split=1, annotations=None, train_split="train",
                test_split="val")


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: dict) -> Path:
    """Root of the clip store extracted from the tiny synthetic set (read-only)."""
    from larp.data.clips import ClipConfig, extract_clips

    out = tmp_path_factory.mktemp("clips") / "synthetic"
    extract_clips("synthetic", tiny_dataset, ClipConfig(**TINY_CLIPS), out, threads=1)
    return out


@pytest.fixture
def tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow tracking at a temporary sqlite store for one test; returns its URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
