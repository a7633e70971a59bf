"""Invariants of the AR generator model (larp.generator.model / presets): layout, causality, dropout, sizes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from larp.generator.model import ARGenerator, GeneratorConfig, RMSNorm
from larp.generator.presets import (
    GENERATOR_PRESETS,
    count_parameters,
    get_preset,
    param_groups,
    preset_num_params,
)

N, V = 12, 40  # tokens per video, vocabulary (small for speed)


def make_model(mode: str, seed: int = 0, **overrides) -> ARGenerator:
    """Tiny generator with a random (not zero) head so logits depend on the input."""
    torch.manual_seed(seed)
    fields = {"mode": mode, "vocab_size": V, "num_tokens": N, "num_classes": 5, **overrides}
    model = ARGenerator(get_preset("tiny", **fields))
    nn.init.normal_(model.output.weight, std=0.5)
    return model


def make_cond(mode: str, batch: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if mode == "class":
        return torch.randint(0, 5, (batch,), generator=g)
    return torch.randint(0, V, (batch, N), generator=g)


def random_tokens(batch: int, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, V, (batch, N), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["class", "fp"])
def test_forward_shape_and_initial_loss_is_uniform(mode):
    torch.manual_seed(0)
    model = ARGenerator(get_preset("tiny", mode=mode, vocab_size=V, num_tokens=N, num_classes=5))
    tokens, cond = random_tokens(3), make_cond(mode, 3)
    assert model(tokens, cond).shape == (3, N, V)
    # zero-initialised head -> uniform prediction -> CE = ln V exactly (larp_ar.py initialize_weights)
    assert model.loss(tokens, cond).item() == pytest.approx(math.log(V), abs=1e-6)


def test_initialisation():
    torch.manual_seed(0)
    model = ARGenerator(GeneratorConfig(width=128, depth=2, heads=4, vocab_size=512, num_tokens=64, num_classes=101))
    assert torch.count_nonzero(model.output.weight) == 0
    assert model.output.bias is None
    assert model.cls_embedding.weight.shape == (102, 128)  # 101 classes + null
    for name, weight in [
        ("wqkv", model.layers[0].attention.wqkv.weight),
        ("w1", model.layers[1].feed_forward.w1.weight),
        ("tok", model.tok_embeddings.weight),
        ("pe", model.abs_pe),
    ]:
        assert weight.std().item() == pytest.approx(0.02, rel=0.05), name
    assert all(not isinstance(m, nn.Linear) or m.bias is None for m in model.modules())
    assert torch.equal(model.norm.weight, torch.ones(128))


def test_ffn_hidden_rounding():
    assert [get_preset(n).ffn_hidden for n in ("gen-LP", "gen-L", "gen-B", "embedded")] == [3584, 2816, 2048, 768]


def test_rmsnorm_computes_in_fp32():
    norm = RMSNorm(64)
    x = torch.randn(4, 64) * 30
    ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    assert torch.allclose(norm(x), ref, atol=1e-5)
    y = norm.to(torch.bfloat16)(x.bfloat16())  # a bf16 model keeps bf16 activations; the statistics are fp32
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), ref, atol=0.02)


@pytest.mark.parametrize("mode", ["class", "fp"])
@pytest.mark.parametrize("j", [0, 5, N - 2])
def test_no_position_sees_the_future(mode, j):
    model = make_model(mode).eval()
    tokens, cond = random_tokens(2), make_cond(mode, 2)
    changed = tokens.clone()
    changed[:, j] = (changed[:, j] + 1) % V
    with torch.no_grad():
        a, b = model(tokens, cond), model(changed, cond)
    # logit i predicts z_i from z_<i: changing z_j may only affect logits j+1 .. n-1
    assert torch.equal(a[:, : j + 1], b[:, : j + 1])
    assert not torch.allclose(a[:, j + 1 :], b[:, j + 1 :])


@pytest.mark.parametrize("mode,first_pos", [("class", 0), ("fp", N)])
def test_sequence_layout_via_positional_embedding(mode, first_pos):
    """Perturbing abs-PE position p changes exactly the logits from index max(0, p - first_pos) on: the first
    logit is read at the class token (class) or at the [sep] token at position n (fp)."""
    model = make_model(mode).eval()
    cfg = model.config
    assert model.abs_pe.shape == (1, N if mode == "class" else 2 * N, cfg.width)
    tokens, cond = random_tokens(2), make_cond(mode, 2)
    with torch.no_grad():
        base = model(tokens, cond)
        original = model.abs_pe.clone()
        for p in sorted({0, first_pos - 1, first_pos, first_pos + 3, cfg.seq_len - 1} - {-1}):
            model.abs_pe[:, p] += 1.0
            out = model(tokens, cond)
            model.abs_pe.copy_(original)
            first_changed = max(0, p - first_pos)
            assert torch.equal(out[:, :first_changed], base[:, :first_changed]), p
            assert not torch.allclose(out[:, first_changed], base[:, first_changed]), p


def test_fp_mode_shares_one_token_table_with_a_sep_row():
    model = make_model("fp").eval()
    assert model.cls_embedding is None
    assert model.tok_embeddings.weight.shape[0] == V + 1
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    assert embeddings == [model.tok_embeddings]
    tokens, cond = random_tokens(2), make_cond("fp", 2)
    with torch.no_grad():
        base, original = model(tokens, cond), model.tok_embeddings.weight.clone()
        model.tok_embeddings.weight[V] += 1.0  # [sep] row: read at position n -> affects the very first logit
        assert not torch.allclose(model(tokens, cond)[:, 0], base[:, 0])
        model.tok_embeddings.weight.copy_(original)
        unused = sorted(set(range(V)) - set(tokens.flatten().tolist()) - set(cond.flatten().tolist()))
        cond_only = sorted(set(cond.flatten().tolist()) - set(tokens.flatten().tolist()))
        assert unused and cond_only
        model.tok_embeddings.weight[unused[0]] += 1.0
        assert torch.equal(model(tokens, cond), base)
        model.tok_embeddings.weight[cond_only[0]] += 1.0  # a row used only by the condition changes predictions
        assert not torch.allclose(model(tokens, cond), base)


def test_fp_mode_rejects_wrong_condition_shape():
    model = make_model("fp")
    with pytest.raises(ValueError, match="expected cond = condition tokens"):
        model(random_tokens(2), torch.zeros(2, N - 1, dtype=torch.long))


def _labels_seen_by_class_table(model: ARGenerator, labels: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = model.cls_embedding.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(torch.zeros(labels.shape[0], model.config.num_tokens, dtype=torch.long), labels)
    handle.remove()
    return seen[0]


def test_class_dropout_rate_in_training_and_none_in_eval():
    model = make_model("class", num_tokens=1)  # sequence = the class token only: cheap for 20k labels
    labels = torch.randint(0, 5, (20000,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    seen = _labels_seen_by_class_table(model.train(), labels)
    dropped = seen == 5  # null class id = num_classes
    assert 0.09 < dropped.float().mean().item() < 0.11  # p = 0.1, std ~0.002
    assert torch.equal(seen[~dropped], labels[~dropped])
    assert torch.equal(_labels_seen_by_class_table(model.eval(), labels), labels)


def test_negative_labels_map_to_null_class():
    model = make_model("class").eval()
    labels = torch.tensor([-1, 3, -7, 5])
    assert _labels_seen_by_class_table(model, labels).tolist() == [5, 3, 5, 5]


def test_config_roundtrip_and_validation():
    cfg = get_preset("embedded", mode="fp", vocab_size=333)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        GeneratorConfig.from_dict({**cfg.to_dict(), "rope": True})
    with pytest.raises(ValueError, match="mode"):
        GeneratorConfig(mode="t2v")
    with pytest.raises(ValueError, match="divisible"):
        GeneratorConfig(width=100, heads=3)
    with pytest.raises(KeyError, match="unknown generator preset"):
        get_preset("gen-XXL")


def test_paper_preset_parameter_counts():
    """Counts computed from the code's layer shapes (docs/official-code-facts.md §9), on the meta device."""
    lp = preset_num_params("gen-LP")
    assert abs(lp - 631.98e6) / 631.98e6 < 1e-3
    assert lp == 631_975_680
    assert preset_num_params("gen-LP", mode="fp") == 633_157_120
    assert preset_num_params("gen-L") == 326_261_760
    assert preset_num_params("gen-L", vocab_size=16384) == 343_038_976  # LlamaGen's "343M" label
    assert preset_num_params("gen-B") == 98_401_536
    assert set(GENERATOR_PRESETS) == {"gen-LP", "gen-L", "gen-B", "embedded", "tiny"}
    tiny = get_preset("tiny")
    assert (tiny.width, tiny.depth, tiny.heads) == (32, 2, 2)


def test_param_groups_decay_only_linear_weights():
    model = make_model("class")
    decay, no_decay = param_groups(model, weight_decay=0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay_names.isdisjoint(no_decay_names)
    assert len(decay_names) + len(no_decay_names) == len(names)
    assert count_parameters(model) == sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert decay_names == linear
    for name in ("abs_pe", "tok_embeddings.weight", "cls_embedding.weight", "norm.weight", "layers.0.ffn_norm.weight"):
        assert name in no_decay_names
