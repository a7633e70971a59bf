"""Stages train_generator and sample_videos, run in-process on a tiny token folder, tokenizer and clip store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from larp.data.clips import MANIFEST_COLUMNS, ClipStore, chunk_pool, sample_chunks, to_float_video
from larp.generator.video_io import read_mp4
from larp.io import read_json, save_weights, write_json
from larp.models import load_generator, load_tokenizer
from larp.tokenizer.encode import pad_context
from larp.tokenizer.model import LARPTokenizer
from larp.tokenizer.presets import TOKENIZER_PRESETS

from .scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]
CLASSES, FRAMES, RES, VIDEO_FRAMES = ["ApplyEyeMakeup", "Biking", "Diving"], 8, 16, 16  # 2 chunks per video
TOK = TOKENIZER_PRESETS["tiny"]  # 8 frames at 16 px, 8 tokens, 64 codes


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


def _write_store(root: Path, videos_per_class: dict[str, int]) -> None:
    """The clip-store layout of larp.data.clips (manifest, one shard, classes.csv, summary.json)."""
    rng = np.random.default_rng(0)
    for split, per_class in videos_per_class.items():
        (root / split).mkdir(parents=True)
        rows, frames = [], []
        for c, name in enumerate(CLASSES):
            for k in range(per_class):
                offset = len(rows) * VIDEO_FRAMES
                rows.append((len(rows), f"{name}/v_{k}.avi", c, name, split, 0, VIDEO_FRAMES, 25.0, 0, offset))
                frames.append(rng.integers(0, 256, (VIDEO_FRAMES, RES, RES, 3), dtype=np.uint8))
        np.save(root / split / "frames-00000.npy", np.concatenate(frames))
        pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(root / split / "manifest.csv", index=False)
    pd.DataFrame({"class_id": range(len(CLASSES)), "class_name": CLASSES}).to_csv(root / "classes.csv", index=False)
    write_json(root / "summary.json", {"params": {"clips": {"resolution": RES}}})


def _write_tokens(folder: Path, rng: np.random.Generator) -> None:
    """Token files in the layout of encode_tokens (random ids: the stages only need the format)."""
    folder.mkdir(parents=True)
    shape, vocab = (TOK.num_tokens,), TOK.codebook_size
    for split, n in (("train", 12), ("test", 6)):
        np.savez(folder / f"{split}.npz", tokens=rng.integers(0, vocab, (n, *shape), dtype=np.uint16),
                 fp_cond=rng.integers(0, vocab, (n, *shape), dtype=np.uint16),
                 labels=np.arange(n) % len(CLASSES), video=np.arange(n), start=np.zeros(n, np.int64),
                 flipped=np.zeros(n, bool))
    write_json(folder / "meta.json", {"variant": "larp", "num_tokens": TOK.num_tokens, "codebook_size": vocab,
                                      "num_classes": len(CLASSES), "class_names": CLASSES, "frames": FRAMES,
                                      "fp_context_frames": 2})


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace: clip store, tokenizer, tokens, params files, and tracking in a temporary sqlite store."""
    tmp = tmp_path_factory.mktemp("gen")
    _write_store(tmp / "clips/synthetic", {"train": 2, "test": 2})  # 12 chunks per split
    torch.manual_seed(0)
    tokenizer = LARPTokenizer(TOK)
    save_weights(tmp / "tokenizer/larp/model.safetensors", tokenizer.state_dict(),
                 {"model_config": TOK.to_dict(), "variant": "larp"})
    _write_tokens(tmp / "tokens/larp/synthetic", np.random.default_rng(1))
    files = [str(ROOT / "params.yaml"), str(ROOT / "tests/fixtures/params.tiny.yaml")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        yield {"tmp": tmp, "params": files}


def _train(ws, variant: str, params: list[str] | None = None, out: str = "generator") -> int:
    t = ws["tmp"]
    return _script("train_generator").main([
        "--params", *(params or ws["params"]), "--variant", variant, "--tokens", str(t / "tokens" / "larp" / "synthetic"),
        "--work", str(t / "work" / out / variant), "--out", str(t / out / variant),
        "--metrics", str(t / "metrics" / out / f"{variant}.json"), "--threads", "1"])


def _sample(ws, variant: str, name: str, params: list[str] | None = None, clips: Path | None = None) -> int:
    t = ws["tmp"]
    return _script("sample_videos").main([
        "--params", *(params or ws["params"]), "--variant", variant, "--generator", str(t / "generator" / variant),
        "--tokenizer", str(t / "tokenizer" / "larp"), "--clips", str(clips or t / "clips" / "synthetic"), "--out", str(t / "samples" / name),
        "--metrics", str(t / "metrics/samples" / f"{name}.json"), "--report", str(t / "reports" / name),
        "--threads", "1"])


@pytest.fixture(scope="module")
def trained(ws):
    for variant in ("class-larp", "fp-larp"):
        assert _train(ws, variant) == 0
    return ws


@pytest.mark.parametrize("variant,mode", [("class-larp", "class"), ("fp-larp", "fp")])
def test_train_generator_outputs(trained, variant, mode):
    t = trained["tmp"]
    assert sorted(p.name for p in (t / "generator" / variant).iterdir()) == ["config.json", "model.safetensors"]
    metrics = read_json(t / "metrics/generator" / f"{variant}.json")
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "steps", "params_generator"} <= set(metrics)
    assert metrics["steps"] == 4 and np.isfinite(metrics["val_loss"])
    model, meta = load_generator(t / "generator" / variant)
    assert (meta["mode"], meta["tokenizer"], meta["dataset"]) == (mode, "larp", "synthetic")
    assert "sampling" not in meta["stage_config"]
    curve = t / "metrics/curves/train_generator" / f"{variant}.csv"  # the DVC plot (curves_path)
    assert curve.read_text().splitlines()[0].startswith("step,loss,acc") and len(curve.read_text().splitlines()) == 3
    assert (model.config.mode, model.config.vocab_size, model.config.num_tokens) == (mode, 64, 8)


def test_sample_class_videos_follow_the_gfvd_protocol_and_are_seeded(trained):
    assert _sample(trained, "class-larp", "a") == 0 and _sample(trained, "class-larp", "b") == 0
    t = trained["tmp"]
    a, b = t / "samples/a", t / "samples/b"
    videos = np.load(a / "videos.npy")
    assert videos.dtype == np.uint8 and videos.shape == (4, FRAMES, RES, RES, 3)
    assert np.array_equal(videos, np.load(b / "videos.npy")), "the same seed must give the same samples"
    store = ClipStore(t / "clips/synthetic", "train")
    real = sample_chunks(chunk_pool(store, FRAMES), 4, seed=42)  # clips.gfvd_seed, TRAIN split
    assert np.load(a / "real_index.npy").tolist() == [list(w) for w in real]
    assert np.load(a / "labels.npy").tolist() == [store.label(v) for v, _ in real]
    assert np.load(a / "tokens.npy").shape == (4, TOK.num_tokens) and not (a / "cond_tokens.npy").exists()
    info = read_json(a / "info.json")
    assert (info["split"], info["cfg_scale"], info["condition_svq"]) == ("train", 1.25, None)
    gifs = sorted((t / "reports/a").glob("class-*.gif"))
    assert 1 <= len(gifs) <= 2 and (t / "reports/a/contact_sheet.png").stat().st_size > 0
    grid = read_mp4(t / "reports/a/samples.mp4")  # rows: classes, columns: grid_videos_per_class, enlarged to 64 px
    assert grid.shape[0] == FRAMES and grid.shape[2] == 2 + 2 * (64 + 2)
    assert {"num_videos", "sample_nll", "videos_per_s"} <= set(read_json(t / "metrics/samples/a.json"))

    other = t / "seed1.yaml"
    other.write_text(yaml.safe_dump({"generator": {"sampling": {"seed": 1}}}))
    assert _sample(trained, "class-larp", "c", trained["params"] + [str(other)]) == 0
    assert not np.array_equal(np.load(t / "samples/c/tokens.npy"), np.load(a / "tokens.npy"))


def test_sample_frame_prediction_conditions_on_the_first_frames(trained):
    assert _sample(trained, "fp-larp", "fp") == 0
    t = trained["tmp"]
    out = t / "samples/fp"
    store = ClipStore(t / "clips/synthetic", "test")
    real = sample_chunks(chunk_pool(store, FRAMES), 4, seed=42)  # TEST split for frame prediction
    assert np.load(out / "real_index.npy").tolist() == [list(w) for w in real]
    tokenizer, _ = load_tokenizer(t / "tokenizer/larp")
    with torch.no_grad():
        context = pad_context(to_float_video(store.read_many(real, FRAMES)), 2)  # fp_context_frames of the tokens
        expected = tokenizer.encode(context, deterministic=True).indices
    assert torch.equal(context[:, :, 2:], context[:, :, 1:2].expand_as(context[:, :, 2:]))
    assert np.array_equal(np.load(out / "cond_tokens.npy"), expected.numpy())
    assert np.load(out / "videos.npy").shape == (4, FRAMES, RES, RES, 3)
    info = read_json(out / "info.json")
    assert (info["split"], info["cfg_scale"], info["condition_svq"]) == ("test", 1.0, "deterministic")
    assert (t / "reports/fp/contact_sheet.png").is_file() and list((t / "reports/fp").glob("class-*.gif"))
    assert read_mp4(t / "reports/fp/samples.mp4").shape[0] == FRAMES  # real clips above their predictions


def test_too_many_videos_is_a_clear_error(trained, capsys):
    big = trained["tmp"] / "big.yaml"
    big.write_text(yaml.safe_dump({"generator": {"sampling": {"num_videos": 13}}}))
    assert _sample(trained, "class-larp", "big", trained["params"] + [str(big)]) == 2
    err = capsys.readouterr().err
    # refused by the parameter validation (from the synthetic set's size) before the stage reads any store
    assert "num_videos = 13" in err and "chunk pool of synthetic/train holds" in err and "set num_videos <=" in err
    assert not (trained["tmp"] / "samples/big").exists()


def test_a_clip_store_of_another_dataset_is_refused(trained, capsys):
    """The rule passes the variant's clip store; one of another dataset (a run by hand) is named, not sampled."""
    other = trained["tmp"] / "clips/ucf101"
    shutil.copytree(trained["tmp"] / "clips/synthetic", other)
    write_json(other / "summary.json", {"dataset": "ucf101", "params": {"clips": {"resolution": RES}}})
    assert _sample(trained, "class-larp", "wrong-store", clips=other) == 2
    err = capsys.readouterr().err
    assert "was extracted from dataset 'ucf101', but params name 'synthetic' for this stage" in err
    assert not (trained["tmp"] / "samples/wrong-store").exists()


def test_tokens_of_another_tokenizer_are_refused(trained, capsys):
    other = trained["tmp"] / "tokens/patchwise/synthetic"
    shutil.copytree(trained["tmp"] / "tokens/larp/synthetic", other)
    write_json(other / "meta.json", {**read_json(other / "meta.json"), "variant": "patchwise"})
    rc = _script("train_generator").main([
        "--params", *trained["params"], "--variant", "class-larp", "--tokens", str(other),
        "--work", str(trained["tmp"] / "work/wrong"), "--out", str(trained["tmp"] / "wrong"),
        "--metrics", str(trained["tmp"] / "wrong.json"), "--threads", "1"])
    assert rc == 2 and "holds the tokens of tokenizer 'patchwise' but the generator trains on 'larp'" in \
        capsys.readouterr().err
    assert not (trained["tmp"] / "wrong").exists()


def test_runs_are_tracked(trained):
    import mlflow

    assert _sample(trained, "class-larp", "tracked") == 0
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("larp-generator")
    runs = {r.data.tags["mlflow.runName"]: r for r in client.search_runs([experiment.experiment_id])}
    assert {"train_generator/class-larp", "train_generator/fp-larp"} <= set(runs)
    train = runs["train_generator/class-larp"].data
    # the resolved model configuration (preset tiny + token files), not only the section's overrides
    built = load_generator(trained["tmp"] / "generator/class-larp")[0].config
    assert (train.params["generator.model.width"], train.params["generator.model.vocab_size"]) == (
        str(built.width), "64")
    assert train.params["generator.preset"] == "tiny" and train.params["steps"] == "4"
    assert "steps" not in train.metrics and "train_examples" not in train.metrics and "val_loss" in train.metrics
    sample = runs["sample_videos/class-larp"]
    assert sample.data.params["num_videos"] == "4" and "num_videos" not in sample.data.metrics
    assert sample.data.params["tokenizer.model.kind"] == "holistic"
    files = {f.path for f in client.list_artifacts(sample.info.run_id)}
    assert {"samples.mp4", "contact_sheet.png", "params.resolved.json"} <= files


def test_dvc_train_params_are_the_generator_keys_except_sampling():
    """DVC tracks whole keys: the generated train_generator stages list every training key of `generator` (and not
    `sampling`, so a sampling change does not retrain); the sampling stages track the whole resolved section."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    schema = yaml.safe_load((ROOT / "src/larp/schemas/params.schema.yaml").read_text())
    keys = set(schema["properties"]["generator"]["properties"]) - {"sampling"}
    body = {name: st.get("do", st) for name, st in stages.items()}  # foreach stages keep their body under `do`
    for name in ("train_generator", "train_generator_table2", "train_generator_scaling"):
        train = {p for p in body[name]["params"] if isinstance(p, str)}
        assert {p.removeprefix("generator.") for p in train if p.startswith("generator.")} == keys, name
        assert "generator" not in train and "generator.sampling" not in train, name
    for name in ("sample_videos", "sample_videos_table2", "sample_videos_table2s", "sample_videos_scaling"):
        assert "generator" in body[name]["params"], name


@pytest.mark.slow
def test_torchrun_two_processes_match_one(ws):
    """2-process DDP on CPU (gloo) sees the same global batches: loss and weights match a single process."""
    t = ws["tmp"]
    nodrop = t / "nodrop.yaml"
    nodrop.write_text(yaml.safe_dump({"generator": {"cpu_bf16": False, "model": {  # fp32: bf16 rounding depends on
        "class_dropout": 0.0, "token_dropout": 0.0, "resid_dropout": 0.0, "ffn_dropout": 0.0}}}))  # the batch shape
    params = ws["params"] + [str(nodrop)]
    assert _train(ws, "class-larp", params, out="single") == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", MLFLOW_DISABLE_TELEMETRY="true")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(ROOT / "workflow/scripts/train_generator.py"), "--params", *params, "--variant", "class-larp",
           "--tokens", str(t / "tokens/larp/synthetic"), "--work", str(t / "work/ddp"), "--out", str(t / "ddp/class-larp"),
           "--metrics", str(t / "metrics/ddp.json"), "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single, ddp = read_json(t / "metrics/single/class-larp.json"), read_json(t / "metrics/ddp.json")
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], abs=1e-4)
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], abs=1e-4)
    a, _ = load_generator(t / "single/class-larp")
    b, _ = load_generator(t / "ddp/class-larp")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-5), name
