"""Invariants of the LARP tokenizer, its presets and FLOP estimate (paper §3.2, §4.1; facts §1, §8.4, §9)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from larp.tokenizer.losses import Discriminator, DiscriminatorConfig
from larp.tokenizer.model import LARPTokenizer, PatchEmbed3D, TokenizerConfig, routing_masks, sincos_1d, sincos_3d
from larp.tokenizer.presets import TOKENIZER_PRESETS, count_config_parameters, estimate_flops, get_preset
from larp.tokenizer.prior import PriorConfig


def tiny(**overrides: object) -> LARPTokenizer:
    torch.manual_seed(0)
    return LARPTokenizer(get_preset("tiny", **overrides))


def video(batch: int = 2, cfg: TokenizerConfig | None = None) -> torch.Tensor:
    cfg = cfg or TOKENIZER_PRESETS["tiny"]
    return torch.rand(batch, 3, cfg.frames, cfg.resolution, cfg.resolution, generator=torch.Generator().manual_seed(1))


def randomise_output_layer(model: LARPTokenizer) -> None:
    """The zero-initialised output layer blocks every gradient upstream; give it weights for gradient tests."""
    torch.nn.init.normal_(model.out_proj.weight, std=0.1)


@pytest.mark.parametrize("n", [1, 3, 8, 17])
def test_any_token_count_works(n: int) -> None:
    model = tiny(num_tokens=n, prior=None if n == 1 else PriorConfig(width=32, depth=1, heads=2))
    out = model(video())
    assert out.quant.indices.shape == (2, n) and out.quant.z_q.shape == (2, n, 4)
    assert out.recon.shape == (2, 3, 8, 16, 16)
    loss = out.recon.abs().mean() + out.quant.loss
    if n > 1:
        loss = loss + model.prior_loss(out.quant, ss_rate=0.5).loss
    loss.backward()
    assert model.quantizer.in_linear.weight.grad is not None


def test_prior_needs_two_tokens() -> None:
    with pytest.raises(ValueError, match="at least 2 tokens"):
        tiny(num_tokens=1)
    with pytest.raises(RuntimeError, match="prior=None"):
        model = tiny(prior=None)
        model.prior_loss(model.encode(video()), ss_rate=0.5)


def test_patchwise_has_one_token_per_patch_and_reconstructs_shape() -> None:
    cfg = get_preset("tiny", kind="patchwise", num_tokens=3)
    model = LARPTokenizer(cfg)
    assert cfg.num_latents == cfg.num_patches == 8
    out = model(video())
    assert out.quant.indices.shape == (2, 8) and out.recon.shape == (2, 3, 8, 16, 16)
    assert not hasattr(model, "queries")
    prior_out = model.prior_loss(out.quant, ss_rate=0.5)
    assert torch.isfinite(prior_out.loss) and prior_out.ss_mask.shape == (2, 7)


def test_output_is_black_at_init() -> None:
    for kind in ("holistic", "patchwise"):
        recon = tiny(kind=kind)(video()).recon
        assert torch.equal(recon, torch.zeros_like(recon))


def test_latent_proj_gain_scales_only_the_bottleneck_out_projection() -> None:
    """gain 1 is the official xavier init (bound sqrt(6 / (d' + D))); any gain multiplies exactly that layer."""
    base, scaled = tiny(), tiny(latent_proj_gain=20.0)
    d_in, d_out = base.cfg.codebook_dim, base.cfg.width
    assert base.latent_proj.weight.abs().max() <= (6 / (d_in + d_out)) ** 0.5
    torch.testing.assert_close(scaled.latent_proj.weight, 20.0 * base.latent_proj.weight)
    others = {k: v for k, v in scaled.state_dict().items() if not k.startswith("latent_proj.weight")}
    for k, v in others.items():
        torch.testing.assert_close(v, base.state_dict()[k], msg=k)
    with pytest.raises(ValueError, match="latent_proj_gain"):
        get_preset("tiny", latent_proj_gain=0.0)


def test_patch_embed_gain_scales_only_the_patch_embedding() -> None:
    base, scaled = tiny(), tiny(patch_embed_gain=10.0)
    torch.testing.assert_close(scaled.patch_embed.proj.weight, 10.0 * base.patch_embed.proj.weight)
    torch.testing.assert_close(scaled.latent_proj.weight, base.latent_proj.weight)
    with pytest.raises(ValueError, match="patch_embed_gain"):
        get_preset("tiny", patch_embed_gain=-1.0)


def test_routing_masks_give_each_token_its_patches() -> None:
    enc, dec = routing_masks(num_patches=8, num_tokens=4)  # patches 2k, 2k+1 belong to token k
    assert enc.shape == dec.shape == (12, 12)
    for k in range(4):
        assert enc[8 + k].nonzero().flatten().tolist() == [2 * k, 2 * k + 1]  # query k -> its patches
        assert dec[4 + 2 * k].nonzero().flatten().tolist() == [k] == dec[4 + 2 * k + 1].nonzero().flatten().tolist()
    assert enc[:8].sum() == 0 and dec[:4].sum() == 0  # patch tokens (encoder) and latents (decoder) unbiased


def test_routing_bias_breaks_the_token_symmetry_and_zero_is_the_plain_model() -> None:
    """At init every holistic query attends uniformly, so a clip's tokens are near copies; the routing bias makes
    each token read its own patches. Bias 0 must be exactly the model without the curriculum."""
    model, x = tiny(), video()
    plain = model._encoder_latents(x)
    model.routing_bias = 0.0
    torch.testing.assert_close(model._encoder_latents(x), plain, rtol=0, atol=0)

    def own_vs_other(bias: float) -> float:
        """How much more token 0's latent moves than the others' when only token 0's patch changes."""
        model.routing_bias = bias
        base = model._encoder_latents(x)
        y = x.clone()
        c = model.cfg
        y[:, :, : c.patch_t, : c.patch_s, : c.patch_s] += 0.5  # patch 0 (raster order), owned by token 0
        delta = (model._encoder_latents(y) - base).detach().norm(dim=-1).mean(0)  # (n,)
        return float(delta[0] / delta[1:].mean())

    # without the curriculum every token moves alike (one vector per clip); with it token 0 follows its own patch
    assert own_vs_other(0.0) < 1.5 < 3.0 < own_vs_other(20.0)
    assert model.decode(model.encode(x, deterministic=True).z_q).shape == x.shape


def test_reconstruction_gradient_reaches_encoder_but_not_codebook() -> None:
    model = tiny()
    randomise_output_layer(model)
    out = model(video())
    (out.recon - video()).abs().mean().backward()
    for name in ("quantizer.in_linear.weight", "encoder.0.attn.qkv.weight", "queries", "patch_embed.proj.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, f"no straight-through gradient at {name}"
    cb = model.quantizer.codebook.weight.grad
    assert cb is None or cb.abs().sum() == 0


def test_prior_loss_reaches_encoder_and_not_codebook() -> None:
    model = tiny()
    out = model.encode(video())
    model.prior_loss(out, ss_rate=0.5, n_rounds=2).loss.backward()
    cb = model.quantizer.codebook.weight.grad
    assert cb is None or cb.abs().sum() == 0, "the prior loss must not update the codebook"
    for name in ("quantizer.in_linear.weight", "encoder.0.mlp.0.weight", "prior.head.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, f"no prior gradient at {name}"
    assert all(name.startswith("prior.") for name, _ in model.named_parameters() if "prior" in name)


def test_decode_indices_matches_decode_of_straight_through_latents() -> None:
    model = tiny()
    randomise_output_layer(model)
    quant = model.encode(video(), deterministic=True)
    assert torch.equal(model.encode(video(), deterministic=True).indices, quant.indices)
    assert torch.allclose(model.decode_indices(quant.indices), model.decode(quant.z_q), atol=1e-5)


def test_wrong_input_shapes_are_rejected() -> None:
    model = tiny()
    with pytest.raises(ValueError, match=r"expected video \(B, 3, 8, 16, 16\) but found"):
        model(torch.rand(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match=r"expected latents \(B, 8, 4\)"):
        model.decode(torch.rand(1, 5, 4))
    with pytest.raises(ValueError, match="kind must be"):
        TokenizerConfig(kind="patches")


def test_linear_patchify_equals_the_official_conv3d() -> None:
    torch.manual_seed(3)
    embed = PatchEmbed3D(4, 8, 24)
    conv = torch.nn.Conv3d(3, 24, kernel_size=(4, 8, 8), stride=(4, 8, 8))
    with torch.no_grad():
        conv.weight.copy_(embed.proj.weight.view(24, 3, 4, 8, 8))
        conv.bias.copy_(embed.proj.bias)
    clip = torch.rand(2, 3, 8, 16, 24)
    expected = conv(clip).flatten(2).transpose(1, 2)  # (B, t*h*w, D), t slowest
    assert torch.allclose(embed(clip), expected, atol=1e-5)


def test_sincos_positional_encodings() -> None:
    pe1 = sincos_1d(8, torch.arange(5))
    assert torch.allclose(pe1[3, 1], torch.sin(torch.tensor(3.0) / 10000 ** (2 * 1 / 8)))
    assert torch.allclose(pe1[3, 4 + 1], torch.cos(torch.tensor(3.0) / 10000 ** (2 * 1 / 8)))
    pe = sincos_3d(16, (3, 2, 4)).view(3, 2, 4, 16)  # (t, h, w, D)

    def step(dim: int, a: int, b: int) -> torch.Tensor:
        return sincos_1d(dim, torch.tensor([a]))[0] - sincos_1d(dim, torch.tensor([b]))[0]

    additive = pe - pe[:, :, :1] - pe[:, :1, :] + pe[:, :1, :1]
    assert torch.allclose(additive, torch.zeros(()), atol=1e-6)  # a sum of w-, h- and t-terms
    assert torch.allclose(pe[0, 0, 2, :8] - pe[0, 0, 0, :8], step(8, 2, 0), atol=1e-6)  # first half: w
    assert torch.allclose(pe[0, 0, 2, 8:], pe[0, 0, 0, 8:])
    assert torch.allclose(pe[0, 1, 0, 8:] - pe[0, 0, 0, 8:], step(8, 1, 0), atol=1e-6)  # second half: h
    assert torch.allclose(pe[2, 0, 0] - pe[0, 0, 0], step(16, 2, 0), atol=1e-6)  # all channels: t


@pytest.mark.parametrize(("name", "paper_m"), [("larp-L", 173.0), ("larp-B", 116.3), ("larp-S", 39.8)])
def test_paper_preset_parameter_counts(name: str, paper_m: float) -> None:
    count = count_config_parameters(TOKENIZER_PRESETS[name])
    assert abs(count / 1e6 - paper_m) / paper_m < 0.01, f"{name}: {count:,} params vs paper {paper_m}M"


def test_official_larp_l_count_and_prior_included() -> None:
    official = get_preset("larp-L", codebook_dim=16, decoder_latent_pe="fixed")
    assert count_config_parameters(official) == 172_179_984  # facts §9 table
    assert count_config_parameters(official, include_prior=True) == 172_179_984 + 21_700_240


def test_config_round_trip() -> None:
    for cfg in (TOKENIZER_PRESETS["embedded"], get_preset("tiny", prior=None, kind="patchwise")):
        back = TokenizerConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert back == cfg
    with pytest.raises(ValueError, match="TokenizerConfig: unknown keys"):
        TokenizerConfig.from_dict({"widht": 3})


@pytest.mark.parametrize("kind", ["holistic", "patchwise"])
def test_estimate_flops_matches_flop_counter(kind: str) -> None:
    cfg = get_preset("tiny", kind=kind)
    disc_cfg = DiscriminatorConfig(width=32, depth=1, heads=2, frames=8, resolution=16)
    model, disc = LARPTokenizer(cfg).eval(), Discriminator(disc_cfg)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # MATH: attention as matmuls
        out = model(video(3))
        model.prior_loss(out.quant, ss_rate=0.5, n_rounds=2)
        disc(out.recon)
    est = estimate_flops(cfg, batch=3, disc=disc_cfg, prior_rounds=2)
    assert est["total"] == sum(v for k, v in est.items() if k != "total")
    assert est["total"] == counter.get_total_flops(), f"estimate {est} vs counted {counter.get_total_flops()}"
