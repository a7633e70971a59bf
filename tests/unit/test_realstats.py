"""Cached real-data statistics: every input that matters changes the key; a cached file is reused, not recomputed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from larp.data.clips import MANIFEST_COLUMNS, ClipStore
from larp.io import write_json
from larp.metrics.fvd import fvd_from_stats
from larp.metrics.realstats import (
    RealStatsKey,
    cache_path,
    cached_real_stats,
    feature_stats,
    load_real_stats,
    save_real_stats,
    store_fingerprint,
    windows_digest,
)

KEY = RealStatsKey(detector="clf-synthetic", detector_hash="ab" * 32, dataset="synthetic", store="0" * 16,
                   split="train", protocol="gfvd", n=8, seed=42, frames=16, resolution=64, resize="none",
                   windows=windows_digest([(0, 0), (1, 16)]))
CHANGES = {"detector": "i3d", "detector_hash": "cd" * 32, "dataset": "ucf101", "store": "1" * 16, "split": "test",
           "protocol": "rfvd", "n": 9, "seed": 0, "frames": 8, "resolution": 32, "resize": "bilinear-antialias",
           "windows": windows_digest([(0, 0), (1, 0)])}


class CountingDetector:
    """Per-channel means of each frame as features; counts the clips it saw."""

    name, feature_dim = "count", 6

    def __init__(self) -> None:
        self.clips = 0

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        self.clips += videos.shape[0]
        return videos[:, :, :2].mean(dim=(-1, -2)).flatten(1).double()  # (B, 3 * 2)


def test_every_field_is_covered_by_the_changes():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(RealStatsKey)}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_key_changes_with_each_input(field):
    other = dataclasses.replace(KEY, **{field: CHANGES[field]})
    assert other.digest() != KEY.digest() and other.filename() != KEY.filename()


def test_key_is_deterministic():
    assert dataclasses.replace(KEY).digest() == KEY.digest() and len(KEY.digest()) == 16


def test_windows_digest_depends_on_order_and_values():
    assert windows_digest([(0, 0), (1, 16)]) == windows_digest(np.array([[0, 0], [1, 16]]))
    assert windows_digest([(1, 16), (0, 0)]) != windows_digest([(0, 0), (1, 16)])


def test_cached_stats_are_reused_without_calling_the_detector(tmp_path):
    videos = [torch.rand(4, 3, 4, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    det = CountingDetector()
    key = dataclasses.replace(KEY, n=8)
    first, cached = cached_real_stats(tmp_path, key, lambda: feature_stats(det, iter(videos)))
    assert not cached and det.clips == 8 and cache_path(tmp_path, key).is_file()
    assert cache_path(tmp_path, key).with_suffix(".json").is_file()  # the key, for people
    second, cached = cached_real_stats(tmp_path, key, lambda: feature_stats(det, iter(videos)))
    assert cached and det.clips == 8, "a cached file must be reused, not recomputed"
    assert np.allclose(second.mean(), first.mean()) and fvd_from_stats(first, second) == pytest.approx(0, abs=1e-9)
    other = dataclasses.replace(key, seed=1)
    assert load_real_stats(tmp_path, other) is None
    cached_real_stats(tmp_path, other, lambda: feature_stats(det, iter(videos)))
    assert det.clips == 16, "another key must be computed"


def test_save_refuses_stats_of_another_size(tmp_path):
    stats = feature_stats(CountingDetector(), [torch.rand(3, 3, 2, 4, 4)])
    with pytest.raises(ValueError, match="N = 8 real clips but the stats hold 3"):
        save_real_stats(tmp_path, KEY, stats)


def _store(root, pixels: int) -> ClipStore:
    (root / "train").mkdir(parents=True)
    np.save(root / "train/frames-00000.npy", np.full((8, 4, 4, 3), pixels, np.uint8))
    rows = [(0, "A/v_0.avi", 0, "A", "train", 0, 8, 25.0, 0, 0)]
    pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(root / "train/manifest.csv", index=False)
    pd.DataFrame({"class_id": [0], "class_name": ["A"]}).to_csv(root / "classes.csv", index=False)
    write_json(root / "summary.json", {"params": {"clips": {"resolution": 4}}})
    return ClipStore(root, "train")


def test_store_fingerprint_sees_pixels_not_only_names(tmp_path):
    a, b, c = _store(tmp_path / "a", 0), _store(tmp_path / "b", 0), _store(tmp_path / "c", 7)
    assert store_fingerprint(a) == store_fingerprint(b)
    assert store_fingerprint(a) != store_fingerprint(c)
