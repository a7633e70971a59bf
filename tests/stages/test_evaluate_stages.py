"""Stages train_detector, evaluate_tokenizer, evaluate_generator and make_table1, in-process on tiny inputs."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from larp.config import load_params
from larp.data.clips import MANIFEST_COLUMNS, ClipStore, chunk_pool, rfvd_windows, sample_chunks, to_float_video
from larp.io import read_json, save_weights, write_json
from larp.stages import evaluation as stage
from larp.metrics.recon import resize_videos
from larp.tokenizer.model import LARPTokenizer
from larp.tokenizer.presets import TOKENIZER_PRESETS

from .scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]
CLASSES, RES, VIDEO_FRAMES = ["ApplyEyeMakeup", "Biking", "Diving"], 16, 32
TOK = TOKENIZER_PRESETS["tiny"]  # 8 frames at 16 px (= clips.frames / clips.resolution of params.tiny.yaml)
FRAMES = TOK.frames
N = 4  # generated videos per sample folder


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


def _files(folder: Path) -> list[str]:
    """Every evaluation file in ``folder``: the exact paths a rule passes to make_table1."""
    return sorted(str(f) for f in folder.glob("*.json"))


def _write_store(root: Path, per_class: int = 2) -> None:
    """The clip-store layout of larp.data.clips (manifest, one shard, classes.csv, summary.json)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        rows, frames = [], []
        for c, name in enumerate(CLASSES):
            for k in range(per_class):
                rows.append((len(rows), f"{name}/v_{k}.avi", c, name, split, 0, VIDEO_FRAMES, 25.0, 0,
                             len(rows) * VIDEO_FRAMES))
                frames.append(rng.integers(0, 256, (VIDEO_FRAMES, RES, RES, 3), dtype=np.uint8))
        np.save(root / split / "frames-00000.npy", np.concatenate(frames))
        pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(root / split / "manifest.csv", index=False)
    pd.DataFrame({"class_id": range(len(CLASSES)), "class_name": CLASSES}).to_csv(root / "classes.csv", index=False)
    write_json(root / "summary.json", {"params": {"clips": {"resolution": RES}}})


def _write_samples(folder: Path, store: ClipStore, mode: str, tokenizer: str, frames: int, copy_reals: bool) -> None:
    """A sample_videos output: the Random(42) chunk sample and videos (the real clips themselves, or noise)."""
    folder.mkdir(parents=True)
    windows = sample_chunks(chunk_pool(store, frames), N, seed=42)
    reals = store.read_many(windows, frames)
    videos = reals if copy_reals else np.random.default_rng(1).integers(0, 256, reals.shape, dtype=np.uint8)
    np.save(folder / "videos.npy", videos)
    np.save(folder / "real_index.npy", np.asarray(windows, np.int64))
    np.save(folder / "labels.npy", np.array([store.label(v) for v, _ in windows]))
    write_json(folder / "info.json", {"mode": mode, "dataset": "synthetic", "tokenizer": tokenizer,
                                      "cfg_scale": 1.25 if mode == "class" else 1.0, "num_videos": N})


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Clip store, both tiny tokenizers, generator configs, sample folders, the trained detector, tracking."""
    tmp = tmp_path_factory.mktemp("eval")
    _write_store(tmp / "clips/synthetic")
    torch.manual_seed(0)
    for variant, cfg in (("larp", TOK), ("patchwise", dataclasses.replace(TOK, kind="patchwise"))):
        save_weights(tmp / f"tokenizer/{variant}/model.safetensors", LARPTokenizer(cfg).state_dict(),
                     {"model_config": cfg.to_dict(), "variant": variant})
    train, test = ClipStore(tmp / "clips/synthetic", "train"), ClipStore(tmp / "clips/synthetic", "test")
    for gen, mode, tok, store, frames, copy in (("class-larp", "class", "larp", train, FRAMES, True),
                                                ("fp-larp", "fp", "larp", test, FRAMES, False),
                                                ("class-patchwise", "class", "patchwise", train, FRAMES, False),
                                                ("fp-patchwise", "fp", "patchwise", test, FRAMES, False),
                                                ("fp16", "fp", "larp", test, 16, False)):
        _write_samples(tmp / "samples" / gen, store, mode, tok, frames, copy)
        write_json(tmp / "generator" / gen / "config.json", {"metrics": {"params_generator": 4321}})
    files = [str(ROOT / "params.yaml"), str(ROOT / "tests/fixtures/params.tiny.yaml")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        assert _train_detector(tmp, files) == 0
        yield {"tmp": tmp, "params": files}


def _train_detector(tmp: Path, params: list[str], out: str = "detector") -> int:
    return _script("train_detector").main([
        "--params", *params, "--dataset", "synthetic", "--clips", str(tmp / "clips/synthetic"),
        "--out", str(tmp / out / "synthetic"), "--metrics", str(tmp / "metrics" / out / "synthetic.json"),
        "--threads", "1"])


def _eval_tokenizer(ws, variant: str, cache: Path, params: list[str] | None = None) -> dict:
    t = ws["tmp"]
    out = t / "eval/tokenizer" / f"{variant}.json"
    rc = _script("evaluate_tokenizer").main([
        "--params", *(params or ws["params"]), "--variant", variant, "--tokenizer", str(t / "tokenizer" / variant),
        "--clips", str(t / "clips/synthetic"), "--detector", str(t / "detector/synthetic"), "--cache-dir", str(cache),
        "--out", str(out), "--threads", "1"])
    assert rc == 0
    return read_json(out)


def _eval_generator(ws, variant: str, cache: Path, samples: str | None = None) -> tuple[int, Path]:
    t = ws["tmp"]
    out = t / "eval/generator" / f"{variant}.json"
    rc = _script("evaluate_generator").main([
        "--params", *ws["params"], "--variant", variant, "--samples", str(t / "samples" / (samples or variant)),
        "--generator", str(t / "generator" / variant), "--clips", str(t / "clips/synthetic"),
        "--detector", str(t / "detector/synthetic"), "--cache-dir", str(cache), "--out", str(out), "--threads", "1"])
    return rc, out


class Recorder:
    """A stand-in detector that records every batch it is given; features = per-frame channel means."""

    name, feature_dim = "rec", 6

    def __init__(self) -> None:
        self.calls: list[torch.Tensor] = []

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        self.calls.append(videos.clone())
        return videos[:, :, :2].mean(dim=(-1, -2)).flatten(1).double()  # (B, 6)


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(stage, "load_detector", lambda *a, **k: (rec, {"name": "rec", "kind": "stub",
                                                                        "weights_hash": "0"}))
    return rec


# ---------------------------------------------------------------------------------------------------------------

def test_train_detector_outputs(ws):
    t = ws["tmp"]
    folder = t / "detector/synthetic"
    assert sorted(p.name for p in folder.iterdir()) == ["detector.json", "model.safetensors"]
    info = read_json(folder / "detector.json")
    assert (info["kind"], info["name"], info["feature_dim"]) == ("classifier", "clf-synthetic", 8)
    assert info["weights_hash"] == stage.sha256_file(folder / "model.safetensors")
    metrics = read_json(t / "metrics/detector/synthetic.json")
    assert 0 <= metrics["test_acc"] <= 1 and metrics["test_clips"] == 6 and metrics["steps"] == 2
    detector, _ = stage.load_detector(folder, "classifier")
    assert detector.features(torch.rand(2, 3, FRAMES, RES, RES)).shape == (2, 8)
    with pytest.raises(stage.StageError, match="holds a classifier detector but detector.kind is i3d"):
        stage.load_detector(folder, "i3d")


def test_i3d_kind_refuses_a_file_with_the_wrong_checksum(ws, capsys):
    t = ws["tmp"]
    fake = t / "i3d_torchscript.pt"
    fake.write_bytes(b"not the I3D weights")
    override = t / "i3d.yaml"
    for path, message in ((str(fake), "git blob SHA-1"), (None, "fetch_i3d")):
        override.write_text(yaml.safe_dump({"detector": {"kind": "i3d", "i3d_path": path}}))
        assert _train_detector(t, ws["params"] + [str(override)], out="i3d") == 2
        assert message in capsys.readouterr().err
        assert not (t / "i3d/synthetic").exists()


@pytest.mark.parametrize("split", ["train", "test"])
def test_rfvd_scores_one_window_per_video_of_the_configured_split(ws, recorder, tmp_path, split):
    override = tmp_path / "split.yaml"
    override.write_text(yaml.safe_dump({"evaluation": {"rfvd_split": split}}))
    metrics = _eval_tokenizer(ws, "larp", tmp_path / "cache", ws["params"] + [str(override)])
    store = ClipStore(ws["tmp"] / "clips/synthetic", split)
    expected = to_float_video(store.read_many(rfvd_windows(store, FRAMES, seed=0), FRAMES))
    reals = torch.cat(recorder.calls[0::2])  # per batch: the real clips, then their reconstructions
    assert torch.equal(reals, expected), "rFVD must score one seeded window of every video of the split"
    assert torch.cat(recorder.calls[1::2]).shape == expected.shape
    assert (metrics["split"], metrics["num_clips"], metrics["metric"]) == (split, len(store), f"rfvd[rec]_{len(store)}_8f")


def test_identity_tokenizer_gives_zero_rfvd_and_real_stats_are_cached(ws, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    with monkeypatch.context() as mp:
        mp.setattr(LARPTokenizer, "reconstruct",
                   lambda model, video: (video, model.encode(video, deterministic=True).indices))
        same = _eval_tokenizer(ws, "larp", cache)
    name = same["metric"]
    assert name == "rfvd[clf-synthetic]_6_8f"
    assert abs(same[name]) < 1e-9, "identical reals and fakes must give a zero distance"
    assert same["psnr"] is None and same["ssim"] == pytest.approx(1.0) and not same["real_stats_cached"]
    assert same["lpips"] is None and same["lpips_status"].startswith("n/a")
    real = _eval_tokenizer(ws, "larp", cache)  # the untrained tokenizer decodes black videos
    assert real["real_stats_cached"] and real[name] > 1e-7, "other clips must give a positive distance"
    assert (real["params_tokenizer"], real["num_tokens"], real["kind"]) == (stage_count(), TOK.num_tokens, "holistic")
    assert len(list(cache.glob("rfvd-synthetic-train-clf-synthetic-n6-*.npz"))) == 1
    # the health report: a perfect reconstruction vs the untrained (black) one, against the same static frames
    h_same, h_real = same["health"], real["health"]
    assert h_same["split"] == "test" and h_same["num_clips"] == len(ClipStore(ws["tmp"] / "clips/synthetic", "test"))
    assert h_same["psnr"] is None and h_same["gain_over_mean_frame_db"] is None  # +inf PSNR is not a number
    assert h_same["mean_frame_psnr"] == pytest.approx(h_real["mean_frame_psnr"])
    assert h_real["psnr"] < h_real["mean_frame_psnr"] and h_real["gain_over_mean_frame_db"] < 0
    assert 0 < h_real["codebook_usage"] <= 1 and h_real["codes_used"] >= 1


def stage_count() -> int:
    from larp.tokenizer.presets import count_parameters

    return count_parameters(LARPTokenizer(TOK), include_prior=False)


def test_class_gfvd_compares_the_clips_the_samples_were_conditioned_on(ws, tmp_path):
    rc, out = _eval_generator(ws, "class-larp", tmp_path)  # samples = the real clips themselves
    assert rc == 0
    same = read_json(out)
    assert same["metric"] == "gfvd[clf-synthetic]_4_8f" and abs(same[same["metric"]]) < 1e-9
    assert (same["split"], same["resize"], same["params_generator"], same["tokenizer"]) == ("train", "none", 4321, "larp")
    rc, out = _eval_generator(ws, "class-patchwise", tmp_path)  # noise samples, same real clips: cached stats
    other = read_json(out)
    assert rc == 0 and other["real_stats_cached"] and other[other["metric"]] > 1e-7


def test_frame_prediction_scores_all_frames_at_64(ws, recorder, tmp_path):
    rc, out = _eval_generator(ws, "fp-larp", tmp_path, samples="fp16")  # 16-frame samples
    assert rc == 0
    assert len(recorder.calls) == 2 and all(c.shape == (N, 3, 16, 64, 64) for c in recorder.calls)
    store = ClipStore(ws["tmp"] / "clips/synthetic", "test")
    windows = sample_chunks(chunk_pool(store, 16), N, seed=42)  # TEST split, Random(42)
    assert torch.allclose(recorder.calls[0], resize_videos(to_float_video(store.read_many(windows, 16)), 64))
    metrics = read_json(out)
    assert (metrics["metric"], metrics["split"], metrics["resolution"]) == ("fp-fvd64[rec]_4_16f", "test", 64)


def test_samples_off_the_protocol_are_refused(ws, tmp_path, capsys):
    bad = ws["tmp"] / "samples/bad"
    _write_samples(bad, ClipStore(ws["tmp"] / "clips/synthetic", "train"), "class", "larp", FRAMES, True)
    np.save(bad / "real_index.npy", np.load(bad / "real_index.npy")[::-1].copy())
    (ws["tmp"] / "eval/generator/class-larp.json").unlink(missing_ok=True)
    rc, out = _eval_generator(ws, "class-larp", tmp_path, samples="bad")
    assert rc == 2 and "is not the Random(42) sample" in capsys.readouterr().err and not out.exists()


def test_make_table1_from_the_stage_outputs(ws, tmp_path, html_tables):
    import mlflow

    t = ws["tmp"]
    for tok in ("larp", "patchwise"):
        _eval_tokenizer(ws, tok, tmp_path)
    for gen in load_params(ws["params"])["generators"]:  # every declared variant: the table needs each one
        assert _eval_generator(ws, gen, tmp_path)[0] == 0
    md, csv_path, html = t / "reports/table1.md", t / "reports/table1.csv", t / "reports/table1.html"
    assert _script("make_table1").main([
        "--params", *ws["params"], "--tokenizer-evals", *_files(t / "eval/tokenizer"),
        "--generator-evals", *_files(t / "eval/generator"), "--md", str(md), "--html", str(html),
        "--csv", str(csv_path)]) == 0
    header, *rows = list(csv.reader(csv_path.open()))
    assert {"rFVD synthetic [clf-synthetic]", "gFVD frame pred. synthetic [clf-synthetic]",
            "gFVD class-cond. synthetic [clf-synthetic]"} <= set(header)
    assert sum(r[header.index("Source")].startswith("quoted") for r in rows) == 12
    assert sum(r[header.index("Source")].startswith("measured") for r in rows) == 2
    assert "NOT FVD" in md.read_text()
    # the page snakemake --report shows: Table 1 as rendered HTML (the CSV's cells), then the tokenizer health table
    page = html.read_text()
    (table1, health), _ = html_tables(page)
    assert table1 == [header, *rows]
    ours = next(r for r in table1 if r[header.index("Source")].startswith("measured"))
    rfvd = ours[header.index("rFVD synthetic [clf-synthetic]")]
    assert float(rfvd) >= 0 and f"<td>{rfvd}</td>" in page
    assert health[0][0] == "Tokenizer" and {r[0] for r in health[1:]} == {"larp", "patchwise"}
    assert "NOT FVD" in page
    runs = mlflow.search_runs(experiment_names=["larp-table1"])
    assert "make_table1/table1" in set(runs["tags.mlflow.runName"])
