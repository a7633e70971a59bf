"""Invariants of KV-cached sampling with CFG (larp.generator.sampling): cache == recompute, CFG, seeding."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import larp.generator.sampling as sampling
from larp.generator.model import ARGenerator
from larp.generator.presets import get_preset
from larp.generator.sampling import cfg_combine, filter_logits, generate, next_token_logits_full

N, V, C = 10, 32, 5  # tokens per video, vocabulary, classes (null class id = C)


def make_model(mode: str, seed: int = 0) -> ARGenerator:
    """Tiny generator with a random (not zero) head so the logits depend on the input."""
    torch.manual_seed(seed)
    model = ARGenerator(get_preset("tiny", mode=mode, vocab_size=V, num_tokens=N, num_classes=C))
    nn.init.normal_(model.output.weight, std=0.5)
    return model.eval()


def make_cond(mode: str, batch: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if mode == "class":
        return torch.randint(0, C, (batch,), generator=g)
    return torch.randint(0, V, (batch, N), generator=g)


@pytest.mark.parametrize("mode,cfg_doubling", [("class", False), ("class", True), ("fp", False)])
def test_cached_logits_match_full_recompute_step_by_step(mode, cfg_doubling):
    model = make_model(mode)
    cond = make_cond(mode, 3)
    if cfg_doubling:
        cond = torch.cat([cond, torch.full_like(cond, C)])  # [cond labels, null labels]
    tokens = torch.randint(0, V, (cond.shape[0], N), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.setup_cache(cond.shape[0])
        for i in range(N):
            cached = model.prefill(cond) if i == 0 else model.step(tokens[:, i - 1])
            full = next_token_logits_full(model, cond, tokens[:, :i])
            assert cached.shape == (cond.shape[0], V)
            assert torch.allclose(cached, full, atol=1e-5, rtol=0), i
        teacher_forced = model(tokens, cond)  # the training forward reads the same logits
        assert torch.allclose(teacher_forced[:, -1], cached, atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="expected at most"):
            model.step(tokens[:, -1])  # the sequence is full
    model.reset_cache()


@pytest.mark.parametrize("mode,cfg_scale", [("class", 1.0), ("class", 1.25), ("fp", 1.0)])
def test_generate_with_and_without_cache_gives_the_same_samples(mode, cfg_scale):
    model, cond = make_model(mode), make_cond(mode, 4)
    cached = generate(model, cond, cfg_scale=cfg_scale, generator=torch.Generator().manual_seed(7))
    full = generate(model, cond, cfg_scale=cfg_scale, generator=torch.Generator().manual_seed(7), use_cache=False)
    assert cached.shape == (4, N) and cached.dtype == torch.long
    assert 0 <= cached.min() and cached.max() < V
    assert torch.equal(cached, full)


def test_cfg_combine_formula():
    cond, uncond = torch.randn(3, V), torch.randn(3, V)
    assert torch.allclose(cfg_combine(cond, uncond, 1.0), cond)
    assert torch.allclose(cfg_combine(cond, uncond, 0.0), uncond)
    assert torch.allclose(cfg_combine(cond, uncond, 1.25), uncond + 1.25 * (cond - uncond))
    assert torch.allclose(cfg_combine(cond, uncond, 3.0), 3.0 * cond - 2.0 * uncond)


def test_generate_applies_cfg_to_raw_logits_at_every_step():
    """Greedy (top_k=1) CFG decoding equals argmax of uncond + s*(cond - uncond) from full recomputation."""
    model, labels, scale = make_model("class"), make_cond("class", 3), 3.0
    null = torch.full_like(labels, C)
    out = generate(model, labels, cfg_scale=scale, top_k=1, temperature=0.7)
    expected = torch.empty_like(out)
    with torch.no_grad():
        for i in range(N):
            c = next_token_logits_full(model, labels, expected[:, :i])
            u = next_token_logits_full(model, null, expected[:, :i])
            expected[:, i] = (u + scale * (c - u)).argmax(-1)
    assert torch.equal(out, expected)
    plain = generate(model, labels, cfg_scale=1.0, top_k=1)
    assert not torch.equal(plain, out)  # guidance changed the decoding, so the check above can fail


def test_generate_calls_cfg_combine_once_per_token_with_doubled_batch(monkeypatch):
    calls = []

    def spy(cond_logits, uncond_logits, scale):
        calls.append((cond_logits.shape, uncond_logits.shape, scale))
        return cfg_combine(cond_logits, uncond_logits, scale)

    monkeypatch.setattr(sampling, "cfg_combine", spy)
    model = make_model("class")
    generate(model, make_cond("class", 2), cfg_scale=1.25)
    assert calls == [((2, V), (2, V), 1.25)] * N
    calls.clear()
    batches = []

    def setup_cache_spy(batch, **kwargs):
        batches.append(batch)
        ARGenerator.setup_cache(model, batch, **kwargs)

    monkeypatch.setattr(model, "setup_cache", setup_cache_spy)
    generate(model, make_cond("class", 2), cfg_scale=1.0)
    assert calls == [] and batches == [2]  # cfg_scale == 1: no doubling, no combination


def test_frame_prediction_rejects_cfg():
    model = make_model("fp")
    with pytest.raises(ValueError, match="class-conditional only"):
        generate(model, make_cond("fp", 2), cfg_scale=1.25)


@pytest.mark.parametrize("mode", ["class", "fp"])
def test_same_seed_same_samples(mode):
    model, cond = make_model(mode), make_cond(mode, 4)
    scale = 1.25 if mode == "class" else 1.0
    a = generate(model, cond, cfg_scale=scale, generator=torch.Generator().manual_seed(0))
    b = generate(model, cond, cfg_scale=scale, generator=torch.Generator().manual_seed(0))
    c = generate(model, cond, cfg_scale=scale, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sampling_runs_in_eval_mode_and_restores_training_mode():
    model, cond = make_model("class"), make_cond("class", 4)
    reference = generate(model, cond, generator=torch.Generator().manual_seed(5))
    model.train()
    in_training = generate(model, cond, generator=torch.Generator().manual_seed(5))
    assert model.training
    assert torch.equal(in_training, reference)  # no dropout, no class dropout while sampling


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    kept = lambda out: torch.isfinite(out)[0].tolist()  # noqa: E731
    assert kept(filter_logits(logits)) == [True] * 5
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False, False]
    assert kept(filter_logits(logits, top_p=0.5)) == [True, False, False, False, False]
    assert kept(filter_logits(logits, top_p=0.6)) == [True, True, False, False, False]
    assert kept(filter_logits(logits, top_p=0.01)) == [True, False, False, False, False]
    shuffled = logits[:, [3, 0, 4, 2, 1]]
    assert kept(filter_logits(shuffled, top_p=0.8)) == [False, True, False, True, True]


def test_samples_stay_inside_top_k():
    model, cond = make_model("class"), make_cond("class", 8)
    allowed_first = next_token_logits_full(model, torch.cat([cond, torch.full_like(cond, C)]), cond.new_zeros(16, 0))
    c, u = allowed_first.chunk(2)
    top3 = cfg_combine(c, u, 1.25).topk(3, dim=-1).indices  # (B, 3)
    for seed in range(5):
        out = generate(model, cond, top_k=3, generator=torch.Generator().manual_seed(seed))
        assert (out[:, :1] == top3).any(dim=-1).all()


@pytest.mark.parametrize("kwargs,match", [({"temperature": 0.0}, "temperature"), ({"top_p": 0.0}, "top_p")])
def test_invalid_sampling_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(make_model("class"), make_cond("class", 2), **kwargs)
