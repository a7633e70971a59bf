"""train_tokenizer and encode_tokens stages on the tiny configuration: outputs, resume, NaN, torchrun, errors."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from larp.config import load_params, variant_section
from larp.data.clips import ClipStore
from larp.generator.video_io import read_mp4
from larp.errors import NonFiniteLoss

from .scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


@pytest.fixture(scope="module")
def params_file(tmp_path_factory, tiny_dataset, tiny_clips_params):
    """params.yaml + the tiny overrides, pointing the synthetic dataset at the session's tiny set."""
    d = tmp_path_factory.mktemp("params")
    extra = {"datasets": {"synthetic": tiny_dataset}, "clips": tiny_clips_params}
    (d / "extra.yaml").write_text(yaml.safe_dump(extra))
    return [str(ROOT / "params.yaml"), str(ROOT / "tests/fixtures/params.tiny.yaml"), str(d / "extra.yaml")]


@pytest.fixture(scope="module")
def clips_dir(tiny_clips):
    return tiny_clips.parent


def _clip_args(clips_dir):
    """train_tokenizer's clip stores: the tiny variants train and validate on the synthetic set."""
    return ["--train-clips", str(clips_dir / "synthetic"), "--val-clips", str(clips_dir / "synthetic")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, params_file, clips_dir):
    """Both tiny tokenizer variants trained through the stage script (shared by the tests below)."""
    out = tmp_path_factory.mktemp("tok")
    train = _script("train_tokenizer")
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: restore the environment afterwards
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'm.db'}")  # read by test_mlflow_runs_carry_...
        for variant in ("larp", "patchwise"):
            rc = train.main(["--params", *params_file, "--variant", variant, *_clip_args(clips_dir),
                             "--work", str(out / "work" / variant), "--out", str(out / "tokenizer" / variant),
                             "--metrics", str(out / "metrics" / f"{variant}.json"),
                             "--report", str(out / "reports" / variant), "--threads", "1"])
            assert rc == 0
    return out


def test_train_outputs_are_complete_and_self_describing(trained):
    from larp.models import load_tokenizer

    for variant, kind in (("larp", "holistic"), ("patchwise", "patchwise")):
        files = sorted(p.name for p in (trained / "tokenizer" / variant).iterdir())
        assert files == ["config.json", "model.safetensors"]
        assert (trained / "reports" / variant / "reconstructions.png").stat().st_size > 1000
        mp4 = read_mp4(trained / "reports" / variant / "reconstructions.mp4")  # real clips above reconstructions
        assert mp4.shape[0] == 8 and mp4.shape[1] > mp4.shape[2] / 4 and mp4.dtype == np.uint8
        metrics = yaml.safe_load((trained / "metrics" / f"{variant}.json").read_text())
        for key in ("val_psnr", "val_ssim", "val_codebook_usage", "val_perplexity", "train_l1", "params_tokenizer",
                    "num_tokens", "steps"):
            assert key in metrics, key
        assert metrics["steps"] == 6
        model, meta = load_tokenizer(trained / "tokenizer" / variant)
        assert model.cfg.kind == kind and meta["variant"] == variant
        video = torch.rand(2, 3, model.cfg.frames, model.cfg.resolution, model.cfg.resolution)
        idx = model.encode(video, deterministic=True).indices
        assert idx.shape == (2, metrics["num_tokens"])
        assert model.decode_indices(idx).shape == video.shape
    assert not list(trained.rglob("*.tmp-*"))


def test_mlflow_runs_carry_the_full_resolved_configuration(trained):
    """Every key after presets and overrides is a param (tokenizer.model.kind although params.yaml sets only the
    preset); configuration in the summary is a param, not a metric; the MP4 and the merged params are artifacts."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{trained / 'm.db'}")
    experiment = client.get_experiment_by_name("larp-tokenizer")
    runs = {r.data.tags["mlflow.runName"]: r for r in client.search_runs([experiment.experiment_id])}
    for variant, kind in (("larp", "holistic"), ("patchwise", "patchwise")):
        run = runs[f"train_tokenizer/{variant}"]
        params, metrics = run.data.params, run.data.metrics
        assert params["tokenizer.model.kind"] == kind and params["tokenizer.preset"] == "tiny"
        for key in ("width", "num_tokens", "codebook_size", "frames", "resolution"):
            assert f"tokenizer.model.{key}" in params, key
        assert params["steps"] == "6" and "run.seed" in params and int(params["num_tokens"]) > 0
        assert "steps" not in metrics and "num_tokens" not in metrics
        assert "val_psnr" in metrics and len(client.get_metric_history(run.info.run_id, "l1")) >= 2
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"reconstructions.png", "reconstructions.mp4", "params.resolved.json"} <= files


def test_dvc_shows_the_stage_metrics_and_draws_the_training_curves(trained, tmp_path):
    """`dvc metrics show` reads the train_tokenizer metrics files with no "failed to load", and the top-level plots
    of dvc.yaml draw the curves the stage wrote (a scratch DVC project holding copies of the tiny run's files)."""
    import shutil

    repo = tmp_path / "repo"
    for variant in ("larp", "patchwise"):
        curve = trained / "curves/train_tokenizer" / f"{variant}.csv"  # curves_path of <out>/metrics/<variant>.json
        header = curve.read_text().splitlines()[0].split(",")
        assert {"step", "total", "l1", "psnr", "codebook_usage"} <= set(header)
        assert len(curve.read_text().splitlines()) == 1 + 3  # log_every 2 over 6 steps
        for src, dst in ((trained / "metrics" / f"{variant}.json", "results/metrics/train_tokenizer"),
                         (curve, "results/metrics/curves/train_tokenizer")):
            (repo / dst).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, repo / dst)
    plots = [p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] if "train_tokenizer" in next(iter(p))]
    stage = {"foreach": ["larp", "patchwise"],
             "do": {"cmd": "true", "metrics": ["results/metrics/train_tokenizer/${item}.json"]}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train_tokenizer": stage}, "plots": plots}))
    dvc = [str(Path(sys.executable).parent / "dvc")]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def run(*args):
        done = subprocess.run(dvc + list(args), cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    run("init", "--no-scm", "-q")
    shown = run("metrics", "show")
    assert "failed to load" not in shown and "val_psnr" in shown and "train_tokenizer/larp.json" in shown
    run("plots", "show", "-o", "plots")
    page = (repo / "plots/index.html").read_text()
    assert "psnr" in page and "codebook_usage" in page


def test_encode_tokens_stage(trained, params_file, clips_dir, tmp_path, tracking_store):
    rc = _script("encode_tokens").main(["--params", *params_file, "--tokenizer", str(trained / "tokenizer/larp"),
                                        "--clips", str(clips_dir / "synthetic"), "--out", str(tmp_path / "tokens"),
                                        "--metrics", str(tmp_path / "m.json"), "--threads", "1"])
    assert rc == 0
    train = np.load(tmp_path / "tokens/synthetic/train.npz")
    store = ClipStore(clips_dir / "synthetic", "train")
    n_chunks = sum(store.num_frames(i) // 8 for i in range(len(store)))
    assert train["tokens"].shape[0] == 2 * n_chunks  # flipped copies of the training chunks
    assert train["flipped"].sum() == n_chunks
    assert train["tokens"].shape == train["fp_cond"].shape and train["tokens"].dtype == np.uint16
    test = np.load(tmp_path / "tokens/synthetic/test.npz")
    assert not test["flipped"].any()
    # deterministic SVQ: encoding the same clip twice gives the same tokens
    from larp.data.clips import to_float_video
    from larp.models import load_tokenizer

    model, _ = load_tokenizer(trained / "tokenizer/larp")
    v, s = int(train["video"][0]), int(train["start"][0])
    again = model.encode(to_float_video(store.read_many([(v, s)], 8)), deterministic=True).indices
    assert np.array_equal(again.numpy()[0], train["tokens"][0])


def _section(params_file, **overrides):
    """params and the larp variant's tokenizer section with ``overrides``."""
    params = load_params(params_file)
    section = variant_section(params, "tokenizer", "tokenizers", "larp")
    section = copy.deepcopy(section)
    section.update(overrides)
    return params, section


def test_resume_equals_uninterrupted(params_file, clips_dir, tmp_path):
    from larp.tokenizer.train import train_tokenizer

    torch.set_num_threads(1)
    params, section = _section(params_file, steps=6, checkpoint_every=2)
    stores = [ClipStore(clips_dir / "synthetic", "train")]
    args = (section, params["clips"], stores)
    full = train_tokenizer(*args, work_dir=tmp_path / "a", seed=0, device="cpu")
    part = train_tokenizer(*args, work_dir=tmp_path / "b", seed=0, device="cpu", stop_after=3)
    assert part.steps == 3
    resumed = train_tokenizer(*args, work_dir=tmp_path / "b", seed=0, device="cpu")
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    diff = {k: (a[k] - b[k]).abs().max().item() for k in a if not torch.equal(a[k], b[k])}
    assert not diff, f"resumed run differs from the uninterrupted one: {diff}"


def test_resumed_metrics_equal_uninterrupted_ones(params_file, clips_dir, tmp_path):
    """Issue 14: a resume mid log window, and a rerun that finds the checkpoint already at the last step, report
    the steps and train_* metrics of an uninterrupted run (they were steps + 1 and no train_* metrics)."""
    from larp.tokenizer.train import train_tokenizer

    torch.set_num_threads(1)
    params, section = _section(params_file, steps=6, checkpoint_every=2, log_every=2)
    stores = [ClipStore(clips_dir / "synthetic", "train")]
    args = (section, params["clips"], stores)
    full = train_tokenizer(*args, work_dir=tmp_path / "a", seed=0, device="cpu")
    assert full.steps == 6 and "train_total" in full.metrics
    train_tokenizer(*args, work_dir=tmp_path / "b", seed=0, device="cpu", stop_after=3)
    resumed = train_tokenizer(*args, work_dir=tmp_path / "b", seed=0, device="cpu")
    again = train_tokenizer(*args, work_dir=tmp_path / "a", seed=0, device="cpu")
    for run in (resumed, again):
        assert run.steps == full.steps
        assert run.metrics == full.metrics


_KILL_AFTER_FIRST_OUTPUT = """
import os, runpy, sys
import larp.io as io
finals, real = set(sys.argv[1].split(",")), os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.abspath(dst) in finals:
        os._exit(137)  # killed right after the first output appeared: no cleanup runs
io.os.replace = replace
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_kill_between_two_publishes_leaves_no_complete_looking_model(params_file, clips_dir, tmp_path):
    """Issue 14 case 3: the model folder, report folder and metrics file used to be renamed one after another, so a
    kill after the first left a complete-looking results/tokenizer/<v>/. Now the model folder appears last."""
    out, report, metrics = tmp_path / "tok", tmp_path / "rep", tmp_path / "m.json"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}", OMP_NUM_THREADS="1")
    finals = ",".join(str(p.resolve()) for p in (out, report, metrics))
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_FIRST_OUTPUT, finals,
                           str(ROOT / "workflow/scripts/train_tokenizer.py"), "--params", *params_file,
                           "--variant", "larp", *_clip_args(clips_dir), "--work", str(tmp_path / "w"),
                           "--out", str(out), "--report", str(report), "--metrics", str(metrics), "--threads", "1"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 137, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not out.exists(), "a half-published stage left a complete-looking model folder"


def test_nan_loss_stops_and_keeps_last_checkpoint(params_file, clips_dir, tmp_path, monkeypatch):
    from larp.tokenizer import model as model_mod
    from larp.tokenizer.train import train_tokenizer

    params, section = _section(params_file, steps=6, checkpoint_every=2)
    original, calls = model_mod.LARPTokenizer.forward, {"n": 0}

    def poisoned(self, video, deterministic=False):
        calls["n"] += 1
        out = original(self, video, deterministic=deterministic)
        if calls["n"] >= 4:  # the 4th training step (step index 3) goes non-finite
            out.recon = out.recon * float("nan")
        return out

    monkeypatch.setattr(model_mod.LARPTokenizer, "forward", poisoned)
    stores = [ClipStore(clips_dir / "synthetic", "train")]
    with pytest.raises(NonFiniteLoss, match="step 3"):
        train_tokenizer(section, params["clips"], stores, work_dir=tmp_path, seed=0, device="cpu")
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_lpips_requested_but_unavailable_is_a_clear_error(params_file, clips_dir, tmp_path, capsys, tracking_store):
    extra = tmp_path / "lpips.yaml"
    extra.write_text("tokenizer:\n  loss:\n    lpips_weight: 1.0\n")
    rc = _script("train_tokenizer").main([
        "--params", *params_file, str(extra), "--variant", "larp", *_clip_args(clips_dir), "--work",
        str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--metrics", str(tmp_path / "m.json"), "--report",
        str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "lpips_weight: 0" in err and "[lpips]" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process(params_file, clips_dir, tmp_path):
    """DDP over 2 gloo processes trains to the weights one process reaches on the same global batches."""
    det = tmp_path / "det.yaml"
    det.write_text(yaml.safe_dump({"tokenizer": {"deterministic_quantization": True, "ss_rounds": 1, "steps": 3,
                                                 "lr": 1.0e-4,
                                                 "checkpoint_every": 3, "prior": {"dropout": 0.0},
                                                 "loss": {"gan_weight": 0.0},
                                                 # fp32: bf16 rounding depends on each process's batch shape
                                                 "cpu_bf16": False}}))
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}", OMP_NUM_THREADS="1")
    outs = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
               str(ROOT / "workflow/scripts/train_tokenizer.py"), "--params", *params_file, str(det), "--variant",
               "larp", *_clip_args(clips_dir), "--work", str(out / "work"), "--out", str(out / "tok"),
               "--metrics", str(out / "m.json"), "--report", str(out / "rep"), "--threads", "1"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[procs] = out
    from larp.io import load_weights

    w1, _ = load_weights(outs[1] / "tok/model.safetensors")
    w2, _ = load_weights(outs[2] / "tok/model.safetensors")
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst < 1e-4, f"2-process weights differ from 1-process by {worst}"
    m1, m2 = (yaml.safe_load((outs[p] / "m.json").read_text()) for p in (1, 2))
    assert m1["train_total"] == pytest.approx(m2["train_total"], rel=1e-4)
    assert m1["train_l1"] == pytest.approx(m2["train_l1"], rel=1e-4)
