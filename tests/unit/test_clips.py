"""Clip extraction (store layout, bad videos, failure threshold, atomicity), the ClipStore reader and protocols."""

from __future__ import annotations

import contextlib
import json
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch

from larp.data import clips as clips_mod
from larp.data.clips import (
    MANIFEST_COLUMNS,
    ClipConfig,
    ClipStore,
    ExtractionError,
    across_classes,
    chunk_pool,
    extract_clips,
    random_window,
    rfvd_windows,
    sample_chunks,
    to_float_video,
)
from larp.errors import DatasetError
from larp.data.synthetic import SyntheticConfig, class_table, render_video, write_video
from larp.data.video import decode_frames

# ---------------------------------------------------------------------------------------------------------------
# the store


def test_store_layout_and_manifest(tiny_clips: Path, tiny_dataset: dict, tiny_clips_params: dict):
    summary = json.loads((tiny_clips / "summary.json").read_text())
    assert summary["splits"]["train"] == {"listed": 3, "ok": 3, "failed": 0, "frames": 60, "windows": 6}
    assert summary["splits"]["test"]["ok"] == 21 and summary["decode"]["clips_per_s"] > 0
    assert summary["params"]["clips"] == tiny_clips_params
    assert list(pd.read_csv(tiny_clips / "classes.csv").columns) == ["class_id", "class_name"]
    assert pd.read_csv(tiny_clips / "failures.csv").empty
    for split in ("train", "test"):
        man = pd.read_csv(tiny_clips / split / "manifest.csv")
        assert list(man.columns) == MANIFEST_COLUMNS and (man["split"] == split).all()
        assert (man["fps"] == 25.0).all() and (man["start_frame"] == 0).all() and (man["num_frames"] == 20).all()
        shards = {k: np.load(tiny_clips / split / f"frames-{k:05d}.npy", mmap_mode="r") for k in set(man["shard"])}
        for k, arr in shards.items():
            assert arr.dtype == np.uint8 and arr.shape[1:] == (16, 16, 3)
            rows = man[man["shard"] == k].sort_values("offset")
            # videos packed back to back, never spanning a shard; shards hold at most shard_frames (or one video)
            assert list(rows["offset"]) == list(np.cumsum([0, *rows["num_frames"]])[:-1])
            assert rows["num_frames"].sum() == len(arr) and (len(arr) <= 64 or len(rows) == 1)
    assert len(shards) > 1


def test_store_content_equals_direct_decoding(tiny_clips: Path):
    store = ClipStore(tiny_clips, "test")
    for i in (0, 7, 20):
        frames, _ = decode_frames(store.manifest["path"][i], stride=1, resolution=16, min_frames=8)
        np.testing.assert_array_equal(store.read(i, 0, store.num_frames(i)), frames)


def test_store_reader(tiny_clips: Path):
    store = ClipStore(tiny_clips, "train")
    assert len(store) == 3 and store.num_classes == 3 and store.resolution == 16
    assert store.class_names == sorted(store.class_names) and store.label(1) == store.manifest["class_id"][1]
    batch = store.read_many([(0, 0), (2, 12)], 8)
    assert batch.shape == (2, 8, 16, 16, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[1], store.read(2, 12, 8))
    with pytest.raises(IndexError, match="outside video 2"):
        store.read(2, 13, 8)
    with pytest.raises(FileNotFoundError, match="extract_clips"):
        ClipStore(tiny_clips, "val")


class _Windows(torch.utils.data.Dataset):
    def __init__(self, store: ClipStore):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.store.read(i, 4, 8)


def test_store_pickles_and_works_in_dataloader_workers(tiny_clips: Path):
    store = ClipStore(tiny_clips, "test")
    expected = store.read_many([(i, 4) for i in range(len(store))], 8)  # opens the maps in this process
    clone = pickle.loads(pickle.dumps(store))
    assert clone._maps == {}
    np.testing.assert_array_equal(clone.read(5, 4, 8), expected[5])
    loader = torch.utils.data.DataLoader(_Windows(store), batch_size=7, num_workers=2)
    np.testing.assert_array_equal(torch.cat(list(loader)).numpy(), expected)


def test_to_float_video():
    u8 = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 6, 3), dtype=np.uint8)
    x = to_float_video(u8)
    assert x.shape == (2, 3, 4, 5, 6) and x.dtype == torch.float32 and x.is_contiguous()
    assert float(x[1, 2, 3, 4, 5]) == pytest.approx(u8[1, 3, 4, 5, 2] / 255)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(ValueError, match="expected uint8"):
        to_float_video(u8.astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------
# protocols


def test_rfvd_windows_one_per_video_and_seeded(tiny_clips: Path):
    store = ClipStore(tiny_clips, "test")
    a, b, c = rfvd_windows(store, 8, seed=0), rfvd_windows(store, 8, seed=0), rfvd_windows(store, 8, seed=1)
    assert a == b and a != c
    assert [i for i, _ in a] == list(range(len(store)))
    assert all(0 <= s <= store.num_frames(i) - 8 for i, s in a) and len({s for _, s in a}) > 1


def test_chunk_pool_non_overlapping_and_complete(tiny_clips: Path):
    store = ClipStore(tiny_clips, "test")
    pool = chunk_pool(store, 8)
    assert len(pool) == sum(store.num_frames(i) // 8 for i in range(len(store))) == 21 * 2
    for i in range(len(store)):
        starts = sorted(s for j, s in pool if j == i)
        assert starts == list(range(0, store.num_frames(i) - 7, 8))  # from frame 0, stride = length, no overlap
    assert len(set(pool)) == len(pool)


def test_sample_chunks_is_the_official_sample():
    pool = [(i, s) for i in range(50) for s in (0, 16, 32)]
    assert sample_chunks(pool, 20) == random.Random(42).sample(pool, 20)
    assert sample_chunks(pool, 20, seed=7) == random.Random(7).sample(pool, 20)
    with pytest.raises(ValueError, match="holds only 150"):
        sample_chunks(pool, 151)


def test_random_window_in_bounds_and_reproducible(tiny_clips: Path):
    store = ClipStore(tiny_clips, "test")
    draws = [random_window(store, np.random.default_rng(3), 8) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    many = [random_window(store, rng, 8) for _ in range(300)]
    assert all(0 <= s <= store.num_frames(i) - 8 for i, s in many)
    assert len({i for i, _ in many}) == len(store) and {s for _, s in many} == set(range(13))


# ---------------------------------------------------------------------------------------------------------------
# bad input, failure threshold, atomicity


def _layout(root: Path, videos: dict[str, Path | bytes | np.ndarray]) -> dict:
    """A one-class UCF-101 layout; every video goes into the train list of split 1."""
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "Thing").mkdir()
    for name, content in videos.items():
        path = root / "Thing" / name
        if isinstance(content, Path):
            shutil.copy(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            write_video(path, content, fps=25, codec="mpeg4")
    lists = root / "ucfTrainTestlist"
    (lists / "classInd.txt").write_text("1 Thing\n")
    (lists / "trainlist01.txt").write_text("".join(f"Thing/{n} 1\n" for n in videos))
    (lists / "testlist01.txt").write_text("")
    return dict(kind="ucf101", root=str(root), split=1, annotations=None, train_split="train", test_split="val")


def _faststart_mp4(path: Path) -> bytes:
    """The first half of an mp4 with its index first: it opens, but its frames cannot all be read."""
    noise = np.random.default_rng(0).integers(0, 256, (20, 24, 32, 3), dtype=np.uint8)  # incompressible
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = noise.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in noise:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = path.read_bytes()
    return data[: len(data) // 2]


@pytest.fixture(scope="module")
def bad_dataset(tmp_path_factory, tiny_synthetic: Path) -> dict:
    good = sorted(tiny_synthetic.glob("*/*.avi"))
    frames = render_video(SyntheticConfig(frames=20, height=24, width=32), class_table(10)[0], 1, 1)
    long = tmp_path_factory.mktemp("long") / "long.avi"  # long enough that its first half holds whole frames
    write_video(long, render_video(SyntheticConfig(frames=40, height=48, width=64), class_table(10)[1], 1, 1), 25,
                "mpeg4")
    videos = {f"v_Thing_g08_c{k:02d}.avi": p for k, p in enumerate(good[:4], 1)}
    videos |= {
        "v_zero.avi": b"",
        "v_garbage.avi": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "v_truncated.avi": long.read_bytes()[: long.stat().st_size // 2],
        "v_cut.mp4": _faststart_mp4(tmp_path_factory.mktemp("mp4") / "v.mp4"),
        "v_short.avi": frames[:5],
        "v_tiny.avi": frames[:, :2, :2],
        "v_wide.avi": np.tile(frames[:, :8], (1, 1, 2, 1)),  # 8 x 64: 8:1
        "v_absent.avi": b"",  # listed in the split file, then deleted below: the "missing file" case
    }
    root = tmp_path_factory.mktemp("bad") / "ucf"
    ds = _layout(root, videos)
    (root / "Thing" / "v_absent.avi").unlink()
    return ds


EXPECTED_REASONS = {"v_cut.mp4": "truncated or corrupt", "v_zero.avi": "empty file", "v_garbage.avi": "unreadable",
                    "v_truncated.avi": "truncated", "v_short.avi": "too short", "v_tiny.avi": "too small",
                    "v_wide.avi": "odd aspect ratio", "v_absent.avi": "missing file"}


def test_bad_videos_skipped_with_reasons(tmp_path, bad_dataset, tiny_clips_params):
    cfg = ClipConfig(**{**tiny_clips_params, "max_failed_fraction": 1.0})
    summary = extract_clips("bad", bad_dataset, cfg, tmp_path / "clips", threads=2)
    assert summary["splits"]["train"] == {"listed": 12, "ok": 4, "failed": 8, "frames": 80, "windows": 8}
    failures = pd.read_csv(tmp_path / "clips" / "failures.csv")
    reasons = {Path(p).name: r for p, r in zip(failures["path"], failures["reason"])}
    assert set(reasons) == set(EXPECTED_REASONS) and (failures["split"] == "train").all()
    for name, needle in EXPECTED_REASONS.items():
        assert reasons[name].startswith(needle), (name, reasons[name])
    assert ClipStore(tmp_path / "clips", "train").manifest["video_id"].str.startswith("v_Thing").all()


def _leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".*tmp-*"))


def test_too_many_failures_publishes_nothing(tmp_path, bad_dataset, tiny_clips_params):
    cfg = ClipConfig(**{**tiny_clips_params, "max_failed_fraction": 0.5})
    with pytest.raises(ExtractionError, match=r"more than clips.max_failed_fraction = 0.5.*clips.failures.csv"):
        extract_clips("bad", bad_dataset, cfg, tmp_path / "clips", threads=1)
    assert not (tmp_path / "clips").exists() and not _leftovers(tmp_path)
    sidecar = pd.read_csv(tmp_path / "clips.failures.csv")
    assert len(sidecar) > 0.5 * 12 and "missing file" in set(sidecar["reason"])


def test_missing_root_or_list_fails_before_any_work(tmp_path, tiny_clips_params, monkeypatch):
    monkeypatch.setattr(clips_mod, "_extract_one", lambda job: pytest.fail("decoded a video"))
    ds = dict(kind="synthetic", root=str(tmp_path / "absent"), split=1, annotations=None, train_split="train",
              test_split="val")
    with pytest.raises(DatasetError, match="absent does not exist"):
        extract_clips("x", ds, ClipConfig(**tiny_clips_params), tmp_path / "clips")
    ds = _layout(tmp_path / "ucf", {})
    (tmp_path / "ucf" / "ucfTrainTestlist" / "testlist01.txt").unlink()
    with pytest.raises(DatasetError, match="testlist01.txt does not exist"):
        extract_clips("x", ds, ClipConfig(**tiny_clips_params), tmp_path / "clips")
    assert not (tmp_path / "clips").exists() and not _leftovers(tmp_path)


def test_crash_midway_leaves_nothing_that_looks_complete(tmp_path, tiny_dataset, tiny_clips_params, monkeypatch):
    cfg = ClipConfig(**tiny_clips_params)
    out = tmp_path / "clips"
    extract_clips("synthetic", tiny_dataset, cfg, out)  # an earlier complete run
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    real, calls = clips_mod._extract_one, []

    def dies_on_the_tenth(job):
        calls.append(job)
        if len(calls) == 10:
            raise KeyboardInterrupt("killed")
        return real(job)

    monkeypatch.setattr(clips_mod, "_extract_one", dies_on_the_tenth)
    with pytest.raises(KeyboardInterrupt):
        extract_clips("synthetic", tiny_dataset, cfg, out)
    assert len(calls) == 10 and not _leftovers(tmp_path)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the old output, untouched
    monkeypatch.undo()
    shutil.rmtree(out)
    calls.clear()
    monkeypatch.setattr(clips_mod, "_extract_one", dies_on_the_tenth)
    with pytest.raises(KeyboardInterrupt):
        extract_clips("synthetic", tiny_dataset, cfg, out)
    assert not out.exists() and not _leftovers(tmp_path)


def test_too_many_failures_lists_every_unusable_video_in_one_pass(tmp_path, bad_dataset, tiny_clips_params):
    """Issue 14 case 10: extraction used to stop at the first failure over the limit and list only those seen."""
    cfg = ClipConfig(**{**tiny_clips_params, "max_failed_fraction": 0.25})
    with pytest.raises(ExtractionError, match=r"split train: 8 of 12 videos.*All 8 unusable videos"):
        extract_clips("bad", bad_dataset, cfg, tmp_path / "clips", threads=2)
    sidecar = pd.read_csv(tmp_path / "clips.failures.csv")
    assert {Path(p).name for p in sidecar["path"]} == set(EXPECTED_REASONS)
    assert not (tmp_path / "clips").exists() and not _leftovers(tmp_path)


_SLOW_EXTRACT = """
import json, sys, time
from larp.data import clips
from larp.data.clips import ClipConfig, extract_clips
real = clips._extract_one
def slow(job):  # the real decode, slowed so that the run is still going when it is killed
    time.sleep(0.5)
    return real(job)
clips._extract_one = slow
extract_clips("synthetic", json.loads(sys.argv[1]), ClipConfig(**json.loads(sys.argv[2])), sys.argv[3], threads=2)
"""


def test_killed_extraction_leaves_no_pool_worker_behind(tmp_path, tiny_dataset, tiny_clips_params):
    """Issue 14 case 6: after a SIGKILL of extract_clips with 2 threads, its workers stayed blocked on a pipe forever."""
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXTRACT, json.dumps(tiny_dataset),
                             json.dumps(tiny_clips_params), str(tmp_path / "clips")])
    try:
        parent, workers, deadline = psutil.Process(proc.pid), [], time.monotonic() + 120  # imports under load
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = parent.children()
        assert len(workers) == 2 and proc.poll() is None, "the extraction did not start its 2 workers"
        time.sleep(1.0)  # workers busy with jobs and waiting for the next ones
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        def alive(p) -> bool:
            try:
                return p.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        deadline = time.monotonic() + 5
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p.pid for p in workers if alive(p)]
    finally:
        proc.kill()
        proc.wait()
    for p in workers:  # no leftovers on this machine, whatever the outcome
        if alive(p):
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
    assert not survivors, f"pool workers {survivors} outlived their killed parent"
    assert not (tmp_path / "clips").exists()


@pytest.mark.parametrize("damage", ["truncated shard", "empty shard", "garbled manifest", "manifest without columns"])
def test_a_damaged_clip_store_names_the_file_and_what_to_do(tmp_path, tiny_clips, damage):
    """Issue 14 case 7: these raised a numpy/pandas traceback that did not name the file."""
    from larp.errors import StageError

    store = tmp_path / "synthetic"
    shutil.copytree(tiny_clips, store)
    shard, manifest = store / "train" / "frames-00000.npy", store / "train" / "manifest.csv"
    if damage == "truncated shard":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
        bad = shard
    elif damage == "empty shard":
        shard.write_bytes(b"")
        bad = shard
    elif damage == "garbled manifest":
        manifest.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
        bad = manifest
    else:
        manifest.write_text("a,b\n1,2\n")
        bad = manifest
    with pytest.raises(StageError, match=rf"{bad} is damaged.*delete {store} and re-run extract_clips"):
        clips = ClipStore(store, "train")
        clips.read(0, 0, 2)


class _Labelled:
    """A store stand-in: video i has label labels[i] (ClipStore.label)."""

    def __init__(self, labels):
        self.labels = labels

    def label(self, i):
        return self.labels[i]


def test_figure_windows_cover_every_class_before_repeating_one():
    store = _Labelled([0, 0, 0, 1, 1, 2, 2, 2, 2])  # written class by class, as a clip store is
    windows = [(i, 3 * i) for i in range(9)]
    assert across_classes(store, windows, 4) == [(0, 0), (3, 9), (5, 15), (1, 3)]
    assert across_classes(store, windows, 100) == [(0, 0), (3, 9), (5, 15), (1, 3), (4, 12), (6, 18), (2, 6),
                                                   (7, 21), (8, 24)]
    assert across_classes(store, [], 4) == []
