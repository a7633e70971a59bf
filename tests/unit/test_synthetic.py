"""The embedded synthetic action video set: determinism, UCF-101 layout, classes defined by motion."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import decord
import numpy as np
import pytest

from larp.errors import ParamsError
from larp.data.synthetic import (
    MOTIONS,
    SHAPES,
    SyntheticConfig,
    _draw,
    _poses,
    class_table,
    make_synthetic,
    render_video,
    write_video,
)


def decode_all(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def test_same_seed_same_frames_other_seed_other_frames(tmp_path: Path, tiny_synthetic: Path, tiny_synthetic_params):
    again = make_synthetic(SyntheticConfig(**tiny_synthetic_params), tmp_path / "again", threads=2)  # 2 processes
    other = make_synthetic(SyntheticConfig(**{**tiny_synthetic_params, "seed": 1}), tmp_path / "other", threads=1)
    assert again["videos"] == other["videos"] == 3 * 8 * 1
    videos = sorted(p.relative_to(tiny_synthetic) for p in tiny_synthetic.glob("*/*.avi"))
    assert sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").glob("*/*.avi")) == videos
    for rel in videos[::5]:
        np.testing.assert_array_equal(decode_all(tiny_synthetic / rel), decode_all(tmp_path / "again" / rel))
        assert np.abs(decode_all(tiny_synthetic / rel).astype(int) - decode_all(tmp_path / "other" / rel)).mean() > 5


def test_no_temporaries_left(tiny_synthetic: Path):
    assert not list(tiny_synthetic.parent.glob(".*tmp-*"))
    assert (tiny_synthetic / "DATASET.md").read_text().count("| ") >= 3


@pytest.fixture(scope="module")
def ucf_like(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic_params) -> tuple[Path, SyntheticConfig]:
    """25 groups as UCF-101 (tiny videos: the lists are what is under test)."""
    cfg = SyntheticConfig(**{**tiny_synthetic_params, "groups": 25, "frames": 2, "height": 8, "width": 10})
    root = tmp_path_factory.mktemp("ucf_like") / "syn"
    make_synthetic(cfg, root, threads=1)
    return root, cfg


def _group(rel: str) -> int:
    return int(rel.split("_g")[1][:2])


def test_class_index_is_one_based_and_alphabetical(ucf_like):
    root, cfg = ucf_like
    lines = (root / "ucfTrainTestlist" / "classInd.txt").read_text().splitlines()
    ids, names = zip(*(ln.split() for ln in lines))
    assert ids == tuple(str(i) for i in range(1, cfg.num_classes + 1))
    assert list(names) == sorted(names) and len(set(names)) == cfg.num_classes
    assert sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "ucfTrainTestlist") == list(names)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_split_lists_follow_ucf(ucf_like, split: int):
    root, cfg = ucf_like
    lists = root / "ucfTrainTestlist"
    label = {name: int(i) for i, name in (ln.split() for ln in (lists / "classInd.txt").read_text().splitlines())}
    train = [ln.split() for ln in (lists / f"trainlist0{split}.txt").read_text().splitlines()]
    test = (lists / f"testlist0{split}.txt").read_text().splitlines()
    for rel, lab in train:  # "Class/v_Class_gGG_cCC.avi <1-based label>"
        cls = rel.split("/")[0]
        assert int(lab) == label[cls] and rel.startswith(f"{cls}/v_{cls}_g") and (root / rel).is_file()
    assert all(len(ln.split()) == 1 and (root / ln).is_file() for ln in test)
    train_groups, test_groups = {_group(r) for r, _ in train}, {_group(r) for r in test}
    assert test_groups == set(range(7 * (split - 1) + 1, 7 * split + 1))
    assert train_groups.isdisjoint(test_groups) and train_groups | test_groups == set(range(1, 26))
    total = cfg.num_classes * cfg.groups * cfg.clips_per_group
    assert len(train) + len(test) == total == len(list(root.glob("*/*.avi")))


@pytest.mark.parametrize("n", [2, 3, 10, 25, 60])
def test_classes_share_shapes_and_motions(n: int):
    classes = class_table(n)
    assert len({c.name for c in classes}) == n and [c.name for c in classes] == sorted(c.name for c in classes)
    shapes, motions = Counter(c.shape for c in classes), Counter(c.motion for c in classes)
    # no shape identifies a class on its own (one may be left over when n is odd)
    assert sum(v == 1 for v in shapes.values()) <= n % 2
    if n >= 3:
        assert max(motions.values()) >= 2  # some classes differ only in shape
    assert ("Disc", "Spin") not in {(c.shape, c.motion) for c in classes}  # invisible rotation excluded


def test_num_classes_out_of_range_is_a_params_error():
    with pytest.raises(ParamsError, match="num_classes"):
        SyntheticConfig(num_classes=61)
    with pytest.raises(ParamsError, match="even"):
        SyntheticConfig(height=71)
    with pytest.raises(ParamsError, match="decord"):
        SyntheticConfig(width=48)


@pytest.mark.parametrize("motion", MOTIONS)
def test_motion_keeps_object_inside_and_moves(motion: str):
    h, w, radius = 72, 96, 10.0
    t = np.arange(64.0)
    for seed in range(5):
        x, y, angle, scale = _poses(motion, t, h, w, radius, np.random.default_rng(seed),
                                        SyntheticConfig().motion_period).T
        reach = radius * scale
        assert (x - reach >= -1).all() and (x + reach <= w + 1).all() and (y - reach >= -1).all()
        assert (y + reach <= h + 1).all(), motion
        # something changes over time: position, orientation or size
        assert max(np.ptp(x), np.ptp(y), np.ptp(angle) * radius, np.ptp(scale) * radius) > 5


def _centroid_track(video: np.ndarray) -> np.ndarray:
    """(T, 2) centroid of the pixels that differ from the video's temporal median (the static background)."""
    diff = np.abs(video.astype(np.float32) - np.median(video, axis=0)).sum(-1)  # (T, H, W)
    mask = diff > 60
    yy, xx = np.mgrid[0:video.shape[1], 0:video.shape[2]]
    area = mask.sum((1, 2)).clip(min=1)
    return np.stack([(mask * xx).sum((1, 2)) / area, (mask * yy).sum((1, 2)) / area], axis=1)


def test_classes_with_the_same_shape_differ_in_motion():
    cfg = SyntheticConfig(frames=48)
    classes = {c.name: c for c in class_table(10)}
    sweep, bounce = classes["DiscSweep"], classes["DiscBounce"]  # same shape, different motion
    stats = {}
    for cls in (sweep, bounce):
        tracks = [_centroid_track(render_video(cfg, cls, g, c)) for g in (1, 2, 3) for c in (1, 2)]
        stats[cls.motion] = np.mean([np.abs(np.diff(tr, axis=0)).mean(0) for tr in tracks], axis=0)  # (|dx|, |dy|)
    assert stats["Sweep"][0] > 3 * stats["Sweep"][1]  # horizontal
    assert stats["Bounce"][1] > 3 * stats["Bounce"][0]  # vertical


def test_videos_of_one_class_differ():
    cfg = SyntheticConfig(frames=4)
    cls = class_table(10)[0]
    a, b, c = (render_video(cfg, cls, g, k).astype(int) for g, k in ((1, 1), (1, 2), (2, 1)))
    assert np.abs(a - b).mean() > 1 and np.abs(a - c).mean() > 5  # other clip; other group (other scene)


@pytest.mark.parametrize("codec,container", [("mpeg4", "avi"), ("libx264", "mp4")])
def test_decord_reads_what_pyav_wrote(tmp_path: Path, codec: str, container: str):
    cfg = SyntheticConfig(frames=12, height=24, width=32, codec=codec, container=container)
    frames = render_video(cfg, class_table(10)[3], 1, 1)
    path = tmp_path / f"v.{container}"
    write_video(path, frames, fps=cfg.fps, codec=codec)
    reader = decord.VideoReader(str(path), num_threads=1)
    assert len(reader) == 12 and reader.get_avg_fps() == pytest.approx(25)
    decoded = reader.get_batch(list(range(12))).asnumpy()
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 6  # lossy, but the same pictures


def test_shapes_render_distinct_antialiased_masks():
    masks = []
    for shape in SHAPES:
        canvas = np.zeros((32, 32, 3), dtype=np.float32)
        _draw(canvas, shape, 16.0, 16.0, 0.3, 12.0, np.full(3, 255.0))
        masks.append(canvas[..., 0] / 255)
        assert 0.1 < masks[-1].mean() < 0.6 and ((masks[-1] > 0) & (masks[-1] < 1)).any()  # partial edge pixels
    for i in range(len(masks)):
        for j in range(i):
            assert np.abs(masks[i] - masks[j]).mean() > 0.02, (SHAPES[i], SHAPES[j])


def test_motion_period_sets_the_speed_and_grain_the_texture():
    cls = {c.name: c for c in class_table(10)}["DiscSweep"]
    t = np.arange(16.0)
    speed = {}
    for period in ((20.0, 36.0), (40.0, 72.0)):
        xs = [_poses("Sweep", t, 72, 96, 10.0, np.random.default_rng(k), period)[:, 0] for k in range(20)]
        speed[period] = np.mean([np.abs(np.diff(x)).mean() for x in xs])
    assert 1.6 < speed[(20.0, 36.0)] / speed[(40.0, 72.0)] < 2.4  # twice the period, half the pixels per frame
    cfg = SyntheticConfig(frames=16, motion_period=(40.0, 72.0))  # and render_video uses it
    slow = np.abs(np.diff(_centroid_track(render_video(cfg, cls, 1, 1)), axis=0))[:, 0].mean()
    fast = np.abs(np.diff(_centroid_track(render_video(SyntheticConfig(frames=16), cls, 1, 1)), axis=0))[:, 0].mean()
    assert slow < fast
    # the default texture, and none at grain 0: a smooth two-colour ramp, so neighbouring pixels differ by < 1 level
    plain = render_video(SyntheticConfig(frames=1, grain=0.0), cls, 1, 1)[0].astype(float)
    grainy = render_video(SyntheticConfig(frames=1), cls, 1, 1)[0].astype(float)
    corner = (slice(0, 8), slice(0, 8))  # background only (the object keeps a margin from the frame edge there)
    assert np.abs(np.diff(plain[corner], axis=1)).mean() < 1.0 < np.abs(np.diff(grainy[corner], axis=1)).mean()


def test_motion_period_and_grain_are_checked():
    with pytest.raises(ParamsError, match="motion_period"):
        SyntheticConfig(motion_period=(36.0, 20.0))
    with pytest.raises(ParamsError, match="grain"):
        SyntheticConfig(grain=-1.0)
    assert SyntheticConfig.from_params({"motion_period": [30, 40]}).motion_period == (30, 40)


def test_background_ramp_flattens_the_background_and_object_colours_quantise_the_hue():
    cls = {c.name: c for c in class_table(10)}["DiscSweep"]
    median = {}
    for ramp in (1.0, 0.0):  # with no grain the background is the two-colour ramp, or one flat colour at ramp 0
        video = render_video(SyntheticConfig(frames=16, grain=0.0, background_colours=6, background_ramp=ramp),
                             cls, 2, 1).astype(float)
        median[ramp] = np.median(video, axis=0)  # the background: the object moves, so the median frame lacks it
    spread = {ramp: np.ptp(bg.reshape(-1, 3), axis=0).max() for ramp, bg in median.items()}
    assert spread[0.0] <= 1.0 < spread[1.0]  # flat: one colour everywhere; ramp 1: two palette colours apart
    hues = set()
    for group in range(1, 13):  # 12 groups draw their object hue from a 3-hue palette: at most 3 distinct colours
        video = render_video(SyntheticConfig(frames=1, object_colours=3), cls, group, 1)[0].astype(int)
        pixels = video.reshape(-1, 3)
        solid = pixels[(pixels.max(1) >= 250) & (pixels.min(1) <= 5)]  # the object's interior: a pure hue
        assert len(solid) > 20
        hues.update(map(tuple, np.unique(solid // 16, axis=0)))
    assert 1 < len(hues) <= 3  # 3 hues at full saturation: red, green, blue
    with pytest.raises(ParamsError, match="background_ramp"):
        SyntheticConfig(background_ramp=1.5)
    with pytest.raises(ParamsError, match="object_colours"):
        SyntheticConfig(object_colours=-1)
