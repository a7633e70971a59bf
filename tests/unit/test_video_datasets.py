"""Video decoding, the resize + centre-crop pipeline, usability rules, and the dataset listings (UCF-101, K600)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import decord
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from larp.config import deep_merge, read_yaml, validate_params
from larp.errors import ParamsError
from larp.data.clips import ClipConfig, ClipStore, extract_clips
from larp.data.datasets import COLUMNS, check_root, class_names, list_videos
from larp.errors import DatasetError
from larp.data.synthetic import SyntheticConfig, class_table, render_video, write_video
from larp.data.video import VideoError, VideoInfo, check_usable, decode_frames, resize_crop, resized_size

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------------
# spatial pipeline


@pytest.mark.parametrize("hw,res,expected", [((72, 96), 64, (64, 85)), ((96, 72), 64, (85, 64)),
                                             ((128, 128), 64, (64, 64)), ((240, 320), 128, (128, 170))])
def test_resized_size_follows_torchvision(hw, res, expected):
    assert resized_size(*hw, res) == expected


def _float_reference(frames: np.ndarray, res: int) -> np.ndarray:
    """The official float pipeline (facts §7): /255, Resize(short side, antialias), CenterCrop, in [0, 255]."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    nh, nw = resized_size(frames.shape[1], frames.shape[2], res)
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = int(round((nh - res) / 2.0)), int(round((nw - res) / 2.0))
    return (x[:, :, top:top + res, left:left + res] * 255).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("shape", [(3, 72, 96), (2, 96, 72), (2, 40, 40)])
def test_resize_crop_matches_the_float_pipeline(shape):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = resize_crop(frames, 32)
    assert out.shape == (shape[0], 32, 32, 3) and out.dtype == np.uint8
    ref = _float_reference(frames, 32)
    assert np.abs(out.astype(np.float32) - ref).max() <= 1.001  # within one grey level of the float pipeline
    assert np.abs(out - ref).mean() < 0.3  # rounding alone gives ~0.25


def test_resize_crop_keeps_the_centre_of_a_ramp():
    """A horizontal ramp stays a ramp: output column j shows source x = (j + left + 0.5) * W/W' (centre crop)."""
    h, w, res = 60, 120, 30  # -> 30x60, crop columns 15..44
    ramp = np.broadcast_to((np.arange(w) * 2).astype(np.uint8)[None, :, None], (1, h, w, 3)).copy()
    out = resize_crop(ramp, res)[0, :, :, 0].astype(float)
    src_x = (np.arange(res) + 15 + 0.5) * (w / 60) - 0.5
    np.testing.assert_allclose(out[:, 2:-2], np.broadcast_to(2 * src_x[2:-2], (res, res - 4)), atol=1.0)
    assert np.ptp(out, axis=0).max() == 0  # no vertical change


def test_resize_crop_rejects_float_input():
    with pytest.raises(ValueError, match="expected uint8"):
        resize_crop(np.zeros((1, 8, 8, 3), np.float32), 8)


# ---------------------------------------------------------------------------------------------------------------
# decoding


@pytest.fixture(scope="module")
def video20(tmp_path_factory) -> tuple[Path, np.ndarray]:
    cfg = SyntheticConfig(frames=20, height=48, width=64)
    path = tmp_path_factory.mktemp("video") / "v.avi"
    write_video(path, render_video(cfg, class_table(10)[0], 1, 1), fps=25, codec="mpeg4")
    reader = decord.VideoReader(str(path), num_threads=1)
    return path, reader.get_batch(list(range(20))).asnumpy()


@pytest.mark.parametrize("stride,cap,expected", [(1, None, 20), (2, None, 10), (3, None, 7), (1, 5, 5)])
def test_decode_frames_stride_and_cap(video20, stride, cap, expected):
    path, decoded = video20
    frames, info = decode_frames(path, stride=stride, resolution=32, min_frames=4, max_frames=cap)
    assert (info.num_frames, info.declared_frames, info.height, info.width) == (20, 20, 48, 64)
    assert frames.shape == (expected, 32, 32, 3)
    np.testing.assert_array_equal(frames, resize_crop(decoded[::stride][:expected], 32))


def test_decord_row_stride_bug_is_reported_as_such(tmp_path):
    write_video(tmp_path / "v.avi", np.zeros((10, 16, 48, 3), np.uint8), fps=25, codec="mpeg4")  # width 48
    with pytest.raises(VideoError, match="unsupported frame size 16x48"):
        decode_frames(tmp_path / "v.avi", stride=1, resolution=16, min_frames=8)


@pytest.mark.parametrize("info,needle", [
    (VideoInfo(40, 80, 25.0, 64, 64), "truncated"),
    (VideoInfo(40, 0, 25.0, 3, 8), "too small"),
    (VideoInfo(40, 40, 25.0, 20, 100), "aspect"),
    (VideoInfo(10, 10, 25.0, 64, 64), "too short"),
])
def test_check_usable_reasons(info, needle):
    with pytest.raises(VideoError, match=needle):
        check_usable(info, min_frames=16, resolution=32)


def test_check_usable_tolerates_a_missing_frame_or_two():
    check_usable(VideoInfo(99, 100, 25.0, 64, 80), min_frames=16, resolution=32)


# ---------------------------------------------------------------------------------------------------------------
# UCF-101 layout


def test_list_videos_ucf_layout(tiny_dataset):
    train, test = list_videos(tiny_dataset, "train"), list_videos(tiny_dataset, "test")
    assert list(train.columns) == COLUMNS and len(train) == 3 and len(test) == 21
    names = class_names(tiny_dataset)
    assert names == sorted(names) and set(train["class_id"]) == {0, 1, 2}
    for row in pd.concat([train, test]).itertuples():
        assert names[row.class_id] == row.class_name and Path(row.path).is_file()
        assert Path(row.path).parent.name == row.class_name and row.video_id == Path(row.path).stem
    assert set(train["split"]) == {"train"} and set(test["split"]) == {"test"}


def _ucf(root: Path, classind: str, trainlist: str, testlist: str = "") -> dict:
    (root / "ucfTrainTestlist").mkdir(parents=True)
    for name, text in (("classInd.txt", classind), ("trainlist01.txt", trainlist), ("testlist01.txt", testlist)):
        (root / "ucfTrainTestlist" / name).write_bytes(text.encode())
    for line in classind.splitlines():
        (root / line.split()[1]).mkdir()
    return dict(kind="ucf101", root=str(root), split=1)  # no Kinetics-only keys (issue 14 case 11)


def test_ucf_lists_with_crlf_and_trailing_labels(tmp_path):
    ds = _ucf(tmp_path, "1 Archery\r\n2 Bowling\r\n",
              "Bowling/v_Bowling_g08_c01.avi 2\r\nArchery/v_Archery_g09_c02.avi 1\r\n",
              "Archery/v_Archery_g01_c01.avi 1\r\n")
    train, test = list_videos(ds, "train"), list_videos(ds, "test")
    assert list(train["class_id"]) == [1, 0] and list(train["class_name"]) == ["Bowling", "Archery"]
    assert list(test["video_id"]) == ["v_Archery_g01_c01"] and test["path"][0].endswith("Archery/v_Archery_g01_c01.avi")


def test_ucf_label_disagreeing_with_class_index(tmp_path):
    ds = _ucf(tmp_path, "1 Archery\n2 Bowling\n", "Bowling/v_Bowling_g08_c01.avi 1\n")
    with pytest.raises(DatasetError, match="disagrees"):
        list_videos(ds, "train")


def test_missing_root_names_the_path(tmp_path):
    ds = dict(kind="synthetic", root=str(tmp_path / "nope"), split=1, annotations=None, train_split="train",
              test_split="val")
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}.*does not exist.*make_synthetic"):
        list_videos(ds, "train")


def test_missing_split_list_names_the_path(tmp_path):
    ds = _ucf(tmp_path, "1 Archery\n", "Archery/v_Archery_g08_c01.avi 1\n")
    (tmp_path / "ucfTrainTestlist" / "testlist01.txt").unlink()
    with pytest.raises(DatasetError, match="testlist01.txt does not exist"):
        list_videos(ds, "test")


def _official_download(folder: Path, tiny_synthetic: Path) -> Path:
    """``folder`` as UCF101.rar and the split-list zip unpack: ``UCF-101/<Class>/`` beside ``ucfTrainTestlist/``."""
    shutil.copytree(tiny_synthetic, folder / "UCF-101", ignore=shutil.ignore_patterns("ucfTrainTestlist", "*.md"))
    shutil.copytree(tiny_synthetic / "ucfTrainTestlist", folder / "ucfTrainTestlist")
    return folder


def test_official_ucf_download_layout_is_accepted_as_it_unpacks(tmp_path, tiny_synthetic):
    """Issue 14 case 11: the videos had to sit directly in root (<root>/<Class>/); UCF-101/ beside the lists failed."""
    root = _official_download(tmp_path / "ucf", tiny_synthetic)
    ds = dict(kind="ucf101", root=str(root), split=1)
    train, test = list_videos(ds, "train"), list_videos(ds, "test")
    assert (len(train), len(test)) == (3, 21)
    for row in pd.concat([train, test]).itertuples():
        path = Path(row.path)
        assert path.is_file() and path.parent.parent == root / "UCF-101" and path.parent.name == row.class_name
    assert class_names(ds) == class_names(dict(kind="ucf101", root=str(tiny_synthetic), split=1))


@pytest.mark.parametrize("case", ["the UCF-101 folder", "one level too high", "lists not unpacked",
                                  "videos elsewhere", "videos not unpacked"])
def test_a_wrong_ucf_root_says_which_folder_to_use(tmp_path, tiny_synthetic, case):
    """Issue 14 case 11: a wrong root said only that ucfTrainTestlist/classInd.txt does not exist (or listed every
    video as a missing file); the error now names the folder to point root at, or what to unpack where."""
    d = _official_download(tmp_path / "download", tiny_synthetic)
    if case == "the UCF-101 folder":
        root, expected = d / "UCF-101", f"point datasets.*.root at {d}, the folder holding ucfTrainTestlist/"
    elif case == "one level too high":
        root, expected = tmp_path, f"point datasets.*.root at {d}, the folder holding ucfTrainTestlist/"
    elif case == "lists not unpacked":
        shutil.rmtree(d / "ucfTrainTestlist")
        root, expected = d, f"unpack the official split lists (UCF101TrainTestSplits-RecognitionTask.zip) into {d}"
    elif case == "videos elsewhere":
        (d / "UCF-101").rename(d / "videos")
        root, expected = d, f"they are in {d / 'videos'}: move (or link) that folder to {d / 'UCF-101'}"
    else:
        shutil.rmtree(d / "UCF-101")
        root, expected = d, f"is in {d} or {d / 'UCF-101'}; unpack UCF101.rar into {d}"
    with pytest.raises(DatasetError) as err:
        list_videos(dict(kind="ucf101", root=str(root), split=1), "train")
    assert expected in str(err.value), str(err.value)


def _dataset_problems(entry: dict) -> list[str]:
    """The problems parameter validation reports about params.yaml with ``entry`` added as dataset ``extra``."""
    params = deep_merge(read_yaml(ROOT / "params.yaml"), {"datasets": {"extra": entry}})
    try:
        validate_params(params)
    except ParamsError as exc:
        return [line for line in str(exc).splitlines() if "datasets." in line]
    return []


def test_ucf_entry_needs_no_kinetics_keys_but_k600_names_each_missing_one(tmp_path):
    """Issue 14 case 11: the schema required annotations, train_split and test_split for every dataset kind."""
    assert _dataset_problems({"kind": "ucf101", "root": "data/ucf101", "split": 1}) == []
    assert _dataset_problems({"kind": "synthetic", "root": "data/synthetic", "split": 1}) == []
    problems = _dataset_problems({"kind": "k600", "root": "data/k600", "split": 1, "annotations": None,
                                  "test_split": "val"})
    assert len(problems) == 2, problems
    assert "datasets.extra: 'train_split' is a required property; a k600 dataset needs annotations" in problems[0]
    assert "datasets.extra.annotations = None is invalid" in problems[1]
    ds = dict(kind="k600", root=str(tmp_path), split=1, annotations=str(tmp_path))
    with pytest.raises(DatasetError, match=r"datasets.\*.train_split is missing; a k600 dataset needs train_split"):
        list_videos(ds, "train")


def test_extract_clips_stage_exits_2_naming_the_root_to_use(tmp_path, tiny_synthetic, capsys):
    """The stage script, on a ucf101 entry without Kinetics keys whose root is the UCF-101 folder itself."""
    d = _official_download(tmp_path / "download", tiny_synthetic)
    override = tmp_path / "o.yaml"
    override.write_text(yaml.safe_dump({"datasets": {"ucf": {"kind": "ucf101", "root": str(d / "UCF-101"),
                                                            "split": 1}}}))
    spec = importlib.util.spec_from_file_location("extract_clips", ROOT / "workflow/scripts/extract_clips.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--params", str(ROOT / "params.yaml"), str(override), "--dataset", "ucf", "--input",
                        str(d / "UCF-101"), "--out", str(tmp_path / "clips"), "--metrics", str(tmp_path / "m.json"),
                        "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"point datasets.*.root at {d}," in err and "Traceback" not in err, err
    assert not (tmp_path / "clips").exists()


def test_input_must_be_the_declared_root(tiny_dataset, tmp_path):
    assert check_root(tiny_dataset, tiny_dataset["root"]) == Path(tiny_dataset["root"])
    with pytest.raises(DatasetError, match="--input"):
        check_root(tiny_dataset, tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Kinetics-600

K600_TRAIN = [("playing guitar", "aaa", 10, 20), ("abseiling", "bbb", 0, 10), ("abseiling", "ccc", 5, 15)]
K600_VAL = [("abseiling", "ddd", 1, 11), ("playing guitar", "eee", 30, 40), ("playing guitar", "gone", 0, 10)]


def _k600(tmp_path: Path, nested: bool) -> dict:
    ann, root = tmp_path / "annotations", tmp_path / "k600"
    ann.mkdir()
    for name, rows, split in (("train.csv", K600_TRAIN, "train"), ("validate.csv", K600_VAL, "validate")):
        pd.DataFrame([(*r, split) for r in rows], columns=["label", "youtube_id", "time_start", "time_end", "split"]
                     ).to_csv(ann / name, index=False)
    frames = render_video(SyntheticConfig(frames=10, height=24, width=32), class_table(10)[0], 1, 1)
    for folder, rows in (("train", K600_TRAIN), ("val", K600_VAL)):
        for label, ytid, t0, t1 in rows:
            if ytid == "gone":  # listed but never downloaded
                continue
            sub = root / folder / (label.replace(" ", "_") if nested else "")
            sub.mkdir(parents=True, exist_ok=True)
            write_video(sub / f"{ytid}_{t0:06d}_{t1:06d}.mp4", frames, fps=25, codec="mpeg4")
    return dict(kind="k600", root=str(root), split=1, annotations=str(ann), train_split="train", test_split="val")


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "per-label"])
def test_k600_listing(tmp_path, nested):
    ds = _k600(tmp_path, nested)
    assert class_names(ds) == ["abseiling", "playing guitar"]
    train, test = list_videos(ds, "train"), list_videos(ds, "test")
    assert list(train.columns) == COLUMNS
    assert list(train["class_id"]) == [1, 0, 0]
    assert list(train["video_id"]) == ["aaa_000010_000020", "bbb_000000_000010", "ccc_000005_000015"]
    assert list(test["class_name"]) == ["abseiling", "playing guitar", "playing guitar"]
    assert all(Path(p).is_file() for p in train["path"])
    exists = [Path(p).is_file() for p in test["path"]]
    assert exists == [True, True, False]  # the missing one is listed for the extractor to report
    if nested:
        assert Path(test["path"][1]).parent.name == "playing_guitar"
    cfg = ClipConfig(frames=8, resolution=16, max_failed_fraction=0.5)
    summary = extract_clips("k600", ds, cfg, tmp_path / "clips", threads=1)
    assert summary["splits"]["test"] == {"listed": 3, "ok": 2, "failed": 1, "frames": 20, "windows": 2}
    failures = pd.read_csv(tmp_path / "clips" / "failures.csv")
    assert list(failures["reason"]) == ["missing file"] and failures["path"][0].endswith("gone_000000_000010.mp4")
    assert ClipStore(tmp_path / "clips", "train").class_names == ["abseiling", "playing guitar"]


def test_k600_missing_annotations(tmp_path):
    ds = _k600(tmp_path, nested=False)
    (Path(ds["annotations"]) / "validate.csv").unlink()
    with pytest.raises(DatasetError, match="validate.csv"):
        list_videos(ds, "test")
    with pytest.raises(DatasetError, match="annotations is null"):
        list_videos({**ds, "annotations": None}, "train")
