"""Invariants of stochastic vector quantisation (paper §3.2 Eq. 6-7; facts §2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare

from larp.tokenizer.quantizer import SVQ, codebook_usage, sample_categorical


def identity_svq(codebook_size: int, dim: int, temperature: float) -> SVQ:
    """SVQ whose in_linear is the identity, so z = l2norm(h)."""
    svq = SVQ(dim, codebook_size, dim, temperature)
    with torch.no_grad():
        svq.in_linear.weight.copy_(torch.eye(dim))
        svq.in_linear.bias.zero_()
    return svq


@pytest.mark.parametrize("temperature", [0.03, 0.3])
def test_draws_follow_softmax_of_cosine_over_temperature(temperature: float) -> None:
    torch.manual_seed(0)
    k, dim, draws = 12, 4, 40_000
    svq = identity_svq(k, dim, temperature)
    # Codes scattered around one direction on the scale of τ, so that the probabilities are spread out;
    # with this set-up a 10 % error in τ gives p < 1e-4 (checked when the test was written).
    base = F.normalize(torch.randn(dim), dim=0)
    with torch.no_grad():
        svq.codebook.weight.copy_(base + 5 * temperature * torch.randn(k, dim))
    h = base.expand(1, draws, dim) * 3.0  # one fixed latent, many independent draws
    indices = svq(h).indices.flatten()
    with torch.no_grad():
        cos = F.cosine_similarity(base[None], svq.codebook.weight, dim=-1)
    expected = torch.softmax(cos.double() / temperature, dim=0)
    observed = torch.bincount(indices, minlength=k).double()
    freq_err = (observed / draws - expected).abs().max().item()
    assert freq_err < 0.008, f"max |empirical - softmax| = {freq_err:.4f}"
    big = expected * draws >= 5  # chi-square on well-populated bins, the rest lumped together
    obs = torch.cat([observed[big], observed[~big].sum()[None]]).numpy()
    exp = torch.cat([expected[big], expected[~big].sum()[None]]).double().numpy() * draws
    keep = exp > 0
    p = chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue
    assert p > 1e-4, f"chi-square p = {p:.2e}: draws do not follow softmax(cos/τ)"


def test_sample_categorical_never_draws_zero_probability_and_keeps_batch_shape() -> None:
    torch.manual_seed(4)
    probs = torch.tensor([0.0, 0.5, 0.0, 0.25, 0.25, 0.0])
    draws = sample_categorical(probs.expand(4, 5000, 6))
    assert draws.shape == (4, 5000) and draws.dtype == torch.long
    counts = torch.bincount(draws.flatten(), minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    assert (counts[1] / draws.numel()).item() == pytest.approx(0.5, abs=0.01)
    one_hot = F.one_hot(torch.tensor([5, 0, 2]), 6).float()  # degenerate rows, incl. the last code
    assert torch.equal(sample_categorical(one_hot), torch.tensor([5, 0, 2]))


def test_deterministic_returns_nearest_code_by_cosine() -> None:
    torch.manual_seed(1)
    svq = SVQ(16, 50, 6)
    h = torch.randn(3, 7, 16)
    out = svq(h, deterministic=True)
    z = F.normalize(svq.in_linear(h), dim=-1)
    cos = F.cosine_similarity(z[:, :, None, :], svq.codebook.weight[None, None], dim=-1)  # (3, 7, 50)
    assert torch.equal(out.indices, cos.argmax(-1))
    assert torch.allclose(out.z_q, F.normalize(svq.codebook.weight[out.indices], dim=-1), atol=1e-6)
    assert torch.equal(svq(h, deterministic=True).indices, out.indices)


def test_straight_through_value_is_code_and_gradient_reaches_input() -> None:
    torch.manual_seed(2)
    svq = SVQ(8, 32, 4)
    h = torch.randn(2, 5, 8, requires_grad=True)
    out = svq(h)
    assert torch.allclose(out.z_q, svq.lookup(out.indices), atol=1e-6)
    w = torch.randn_like(out.z_q)
    (out.z_q * w).sum().backward()
    # STE: d z_q / d z = identity, so the gradient equals that of (l2norm(in_linear(h)) * w).sum().
    h2 = h.detach().clone().requires_grad_(True)
    (F.normalize(svq.in_linear(h2), dim=-1) * w).sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    assert torch.allclose(h.grad, h2.grad, atol=1e-6)
    assert svq.codebook.weight.grad is None or svq.codebook.weight.grad.abs().sum() == 0


def test_losses_and_their_gradient_targets() -> None:
    torch.manual_seed(3)
    svq = SVQ(8, 32, 4, commit_weight=0.25, codebook_weight=1.0)
    h = torch.randn(2, 5, 8)
    out = svq(h)
    z = F.normalize(svq.in_linear(h), dim=-1)
    q = svq.lookup(out.indices)
    expected = ((q - z) ** 2).mean()
    assert torch.allclose(out.commit_loss, expected) and torch.allclose(out.codebook_loss, expected)
    assert torch.allclose(out.loss, 0.25 * out.commit_loss + 1.0 * out.codebook_loss)
    out.commit_loss.backward(retain_graph=True)  # commitment moves the encoder only
    assert svq.codebook.weight.grad is None and svq.in_linear.weight.grad.abs().sum() > 0
    svq.zero_grad(set_to_none=True)
    out.codebook_loss.backward()  # codebook loss moves the codebook only
    assert svq.in_linear.weight.grad is None and svq.codebook.weight.grad.abs().sum() > 0


def test_runs_in_fp32_under_autocast_and_codebook_init() -> None:
    svq = SVQ(8, 64, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = svq(torch.randn(2, 3, 8).bfloat16())
    assert out.z_q.dtype == torch.float32 and out.loss.dtype == torch.float32
    bound = math.sqrt(6 / 4)  # kaiming-uniform on (K, d'), fan_in = d'
    w = svq.codebook.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound


def test_codebook_usage_fraction_and_perplexity() -> None:
    frac, ppl = codebook_usage(torch.zeros(4, 10, dtype=torch.long), 16)
    assert frac == 1 / 16 and ppl == pytest.approx(1.0)
    frac, ppl = codebook_usage(torch.arange(32).view(2, 16) % 16, 16)
    assert frac == 1.0 and ppl == pytest.approx(16.0)
    with pytest.raises(ValueError, match="expected indices < 8"):
        codebook_usage(torch.tensor([9]), 8)


def test_kmeans_init_spreads_codes_over_a_narrow_cone():
    """Encoder outputs inside a narrow cone hit a handful of random codes; data-initialised codes cover the cone."""
    from larp.tokenizer.quantizer import SVQ, spherical_kmeans

    torch.manual_seed(0)
    svq = SVQ(in_dim=16, codebook_size=64, codebook_dim=8)
    common = torch.randn(16) * 10
    h = common + torch.randn(512, 16)  # (N, 16): a shared component dominates, as at initialisation
    before = svq(h.unsqueeze(0), deterministic=True).indices.unique().numel()
    svq.init_from_data(h.unsqueeze(0), torch.Generator().manual_seed(0))
    after = svq(h.unsqueeze(0), deterministic=True).indices.unique().numel()
    assert before <= 8 and after >= 48, (before, after)
    assert torch.allclose(svq.codebook.weight.norm(dim=-1), torch.ones(64), atol=1e-5)
    z = torch.nn.functional.normalize(torch.randn(300, 4), dim=-1)
    c = spherical_kmeans(z, 5, iters=20, generator=torch.Generator().manual_seed(1))
    assign = (z @ c.t()).argmax(-1)
    for j in range(5):  # each centroid is the normalised mean of its cluster (a Lloyd fixed point)
        members = z[assign == j]
        if len(members):
            assert torch.allclose(c[j], torch.nn.functional.normalize(members.sum(0), dim=0), atol=1e-4)
