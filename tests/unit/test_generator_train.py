"""Generator training loop (larp.generator.train): learning, exact resumption, NaN guard, AdamW groups, batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from larp.config import load_params, validate_params
from larp.errors import ParamsError
from larp.generator.config import GeneratorTraining
from larp.generator.model import ARGenerator
from larp.generator.presets import get_preset
from larp.generator.train import TokenBatches, TokenData, build_optimizer, evaluate_nll, load_tokens, train_generator
from larp.io import write_json
from larp.errors import NonFiniteLoss

V, N, C = 16, 8, 4  # vocabulary, tokens per sequence, classes


def token_data(mode: str = "class", examples: int = 32) -> TokenData:
    """A learnable problem: the sequence is fixed by the condition (class c -> c*4 + j; fp: a copy of the cond)."""
    labels = np.arange(examples) % C
    if mode == "class":
        tokens = (labels[:, None] * 4 + np.arange(N)[None]) % V
        cond = labels
    else:
        cond = np.random.default_rng(0).integers(0, V, (examples, N))
        tokens = cond
    meta = {"num_tokens": N, "codebook_size": V, "num_classes": C, "fp_context_frames": 2}
    return TokenData(tokens=tokens.astype(np.uint16), cond=cond, meta=meta)


def section(**overrides) -> dict:
    base = {"preset": "tiny", "model": {}, "mode": "class", "tokenizer": "larp", "dataset": "synthetic", "steps": 6,
            "batch_size": 8, "lr": 3.0e-3, "betas": [0.9, 0.95], "weight_decay": 0.05, "warmup_steps": 2,
            "min_lr_mult": 0.1, "eval_clips": 32, "checkpoint_every": 2, "log_every": 2, "cpu_bf16": False}
    return base | overrides


def train(cfg: dict, data: TokenData, **kwargs):
    return train_generator(cfg, data, **kwargs)


@pytest.mark.parametrize("mode,cpu_bf16", [("class", False), ("fp", False), ("class", True)])
def test_training_reduces_the_loss(tmp_path, mode, cpu_bf16):
    """Learns in fp32 and in CPU bf16 autocast (generator.cpu_bf16: true forces it where auto would not)."""
    torch.set_num_threads(1)
    data = token_data(mode)
    steps = 80
    cfg = section(mode=mode, steps=steps, batch_size=16, checkpoint_every=100, log_every=10, cpu_bf16=cpu_bf16)
    result = train(cfg, data, work_dir=tmp_path, seed=0, device="cpu")
    after = evaluate_nll(result.model, data, device="cpu", limit=32, batch=16)["val_loss"]
    assert after < 0.5 * math.log(V), f"loss {after:.3f} did not fall below half of ln V = {math.log(V):.3f}"
    assert result.steps == steps and set(result.metrics) == {"train_loss", "train_acc"}


def test_resumed_equals_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    data, cfg = token_data(), section()
    first = train(cfg, data, work_dir=tmp_path / "a", seed=3, device="cpu", stop_after=3)
    assert first.steps == 3
    resumed = train(cfg, data, work_dir=tmp_path / "a", seed=3, device="cpu")
    straight = train(cfg, data, work_dir=tmp_path / "b", seed=3, device="cpu")
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
    assert not torch.equal(a["output.weight"], first.model.state_dict()["output.weight"] * 0), "nothing trained"


def test_nan_loss_stops_and_keeps_a_checkpoint_from_before_the_step(tmp_path, monkeypatch):
    """The checkpoint written after step 4's update holds the weights step 4 failed with (resuming from it would
    fail again whatever the lr): the one of step 2 is kept (issue 14)."""
    torch.set_num_threads(1)
    forward, calls = ARGenerator.forward, {"n": 0}

    def poisoned(self, tokens, cond):
        calls["n"] += 1
        logits = forward(self, tokens, cond)
        return logits * float("nan") if calls["n"] == 5 else logits

    monkeypatch.setattr(ARGenerator, "forward", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"step 4.*checkpoint.pt of step 2 \(before the non-finite step\) is kept"):
        train(section(steps=8), token_data(), work_dir=tmp_path, seed=0, device="cpu")
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_resumed_metrics_equal_uninterrupted_ones(tmp_path):
    """Issue 14: resuming mid log window, or at the last step (a forced rerun with work/ intact), reports the steps
    and train_loss / train_acc of an uninterrupted run."""
    torch.set_num_threads(1)
    data, cfg = token_data(), section(steps=6, log_every=4, checkpoint_every=3)
    full = train(cfg, data, work_dir=tmp_path / "a", seed=3, device="cpu")
    train(cfg, data, work_dir=tmp_path / "b", seed=3, device="cpu", stop_after=5)
    resumed = train(cfg, data, work_dir=tmp_path / "b", seed=3, device="cpu")
    again = train(cfg, data, work_dir=tmp_path / "a", seed=3, device="cpu")
    assert set(full.metrics) == {"train_loss", "train_acc"} and full.steps == 6
    for run in (resumed, again):
        assert (run.steps, run.metrics) == (full.steps, full.metrics)


def test_weight_decay_only_on_linear_weights():
    model = ARGenerator(get_preset("tiny", vocab_size=V, num_tokens=N, num_classes=C))
    opt = build_optimizer(model, GeneratorTraining.from_section(section(weight_decay=0.05, lr=6.0e-4)))
    decay, no_decay = opt.param_groups
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == linear
    no_decay_ids = {id(p) for p in no_decay["params"]}
    for p in (model.tok_embeddings.weight, model.cls_embedding.weight, model.abs_pe, model.norm.weight):
        assert id(p) in no_decay_ids
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["lr"] == 6.0e-4


def test_batches_are_a_pure_function_of_seed_step_rank_and_ranks_split_the_global_batch():
    data = token_data(examples=20)
    single = TokenBatches(data, 8, world=1, seed=5, rank=0)
    ranks = [TokenBatches(data, 4, world=2, seed=5, rank=r) for r in (0, 1)]
    for step in (0, 1, 7, 3):
        assert np.array_equal(single.indices(step), TokenBatches(data, 8, 1, 5, 0).indices(step))
        assert np.array_equal(single.indices(step), np.concatenate([r.indices(step) for r in ranks]))
    epoch = np.concatenate([single.indices(s) for s in range(5)])[:20]  # 5 steps x 8 = 2 epochs of 20
    assert sorted(epoch.tolist()) == list(range(20)), "an epoch must visit every example once"
    assert not np.array_equal(single.indices(0), TokenBatches(data, 8, 1, 6, 0).indices(0))


def test_load_tokens_checks_labels(tmp_path):
    d = token_data()
    np.savez(tmp_path / "train.npz", tokens=d.tokens, fp_cond=d.tokens, labels=d.cond + C)
    write_json(tmp_path / "meta.json", d.meta)
    with pytest.raises(ValueError, match=r"expected labels in \[0, 4\)"):
        load_tokens(tmp_path, "train", "class")
    assert load_tokens(tmp_path, "train", "fp").cond.shape == (32, N)
    with pytest.raises(FileNotFoundError, match="run the encode_tokens stage"):
        load_tokens(tmp_path, "test", "class")


def test_params_name_a_declared_tokenizer_and_dataset():
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    params["generators"]["bad"] = {"tokenizer": "nope"}
    params["generator"]["dataset"] = "ucf"
    with pytest.raises(ParamsError) as err:
        validate_params(params)
    assert "generators.bad: tokenizer = 'nope' is not declared under tokenizers" in str(err.value)
    assert "generator: dataset = 'ucf' is not declared under datasets" in str(err.value)
