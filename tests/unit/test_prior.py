"""Invariants of the continuous AR prior and scheduled sampling (paper §3.3, §4.1; facts §3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from larp.tokenizer.presets import count_parameters
from larp.tokenizer.prior import ARPrior, PriorConfig, ss_rate


def make_batch(batch: int, n: int, k: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_q, indices, unit codebook): z_q holds the codebook vectors of random indices, as SVQ outputs."""
    g = torch.Generator().manual_seed(seed)
    codebook = F.normalize(torch.randn(k, dim, generator=g), dim=-1)
    indices = torch.randint(0, k, (batch, n), generator=g)
    return codebook[indices], indices, codebook


def small_prior(n: int, dim: int = 4, **kw: object) -> ARPrior:
    return ARPrior(PriorConfig(width=32, depth=2, heads=2, **kw), dim, n)


def test_ss_rate_schedule() -> None:
    assert ss_rate(0, 1000) == 0.0
    assert ss_rate(150, 1000) == pytest.approx(0.25)
    assert ss_rate(300, 1000) == pytest.approx(0.5)
    assert ss_rate(1000, 1000) == pytest.approx(0.5)
    assert ss_rate(100, 1000, peak=0.2, peak_frac=0.1) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="max_steps"):
        ss_rate(1, 0)


def test_gptc_s_parameter_count() -> None:
    with torch.device("meta"):
        prior = ARPrior(PriorConfig(), codebook_dim=16, seq_len=1024)
    assert count_parameters(prior, include_prior=True) == 21_700_240


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_round_two_mixes_sampled_and_true_inputs_at_the_rate(rate: float) -> None:
    torch.manual_seed(0)
    batch, n, k, dim = 48, 65, 16, 4
    z_q, indices, codebook = make_batch(batch, n, k, dim)
    prior = small_prior(n, dim, logit_temperature=1.0).eval()  # T = 1: near-uniform draws, most differ
    seen: list[torch.Tensor] = []
    prior.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    out = prior.loss(z_q, indices, codebook, ss_rate=rate, n_rounds=2)
    assert len(seen) == 2 and len(out.per_round_loss) == 2
    assert torch.equal(seen[0], z_q[:, :-1])  # round 1 is teacher forced
    mask = out.ss_mask
    assert mask.shape == (batch, n - 1)
    frac = mask.float().mean().item()
    sigma = (rate * (1 - rate) / mask.numel()) ** 0.5
    assert abs(frac - rate) < 4 * sigma, f"replaced fraction {frac:.3f} vs rate {rate}"
    round2 = seen[1]  # inputs for positions 0..n-2
    assert torch.equal(round2[:, 0], z_q[:, 0])  # position 0 always true
    changed = (round2[:, 1:] != z_q[:, 1:-1]).any(-1)  # positions 1..n-2
    assert not (changed & ~mask[:, :-1]).any(), "an unmasked position was replaced"
    assert changed.float().mean() > 0.5 * rate, "masked positions were not replaced by sampled tokens"
    cos = round2[:, 1:] @ codebook.t()  # every round-2 input is a codebook vector
    assert torch.allclose(cos.max(-1).values, torch.ones(()), atol=1e-5)


@pytest.mark.parametrize(("rounds", "rate"), [(1, 0.5), (2, 0.0)])
def test_teacher_forcing_only_and_loss_shift(rounds: int, rate: float) -> None:
    torch.manual_seed(1)
    z_q, indices, codebook = make_batch(3, 9, 16, 4)
    prior = small_prior(9).eval()
    out = prior.loss(z_q, indices, codebook, ss_rate=rate, n_rounds=rounds)
    assert out.ss_mask is None and len(out.per_round_loss) == 1
    logits = prior.logits(z_q[:, :-1], codebook)  # inputs 0..n-2 predict targets 1..n-1
    expected = F.cross_entropy(logits.reshape(-1, 16), indices[:, 1:].reshape(-1))
    assert torch.allclose(out.loss, expected, atol=1e-5)
    acc = (logits.argmax(-1) == indices[:, 1:]).float().mean().item()
    assert out.acc_top1 == pytest.approx(acc)


def test_loss_is_mean_over_rounds() -> None:
    torch.manual_seed(2)
    z_q, indices, codebook = make_batch(4, 12, 16, 4)
    out = small_prior(12).eval().loss(z_q, indices, codebook, ss_rate=0.5, n_rounds=3)
    assert len(out.per_round_loss) == 3
    assert out.loss.item() == pytest.approx(sum(out.per_round_loss) / 3, rel=1e-5)


def test_logits_are_cosine_over_temperature_and_prior_is_causal() -> None:
    torch.manual_seed(3)
    z_q, _, codebook = make_batch(2, 10, 16, 4)
    prior = small_prior(10, logit_temperature=0.03).eval()
    pred = prior(z_q)
    assert torch.allclose(pred.norm(dim=-1), torch.ones(()), atol=1e-5)
    assert torch.allclose(prior.logits(z_q, codebook) * 0.03, pred @ codebook.t(), atol=1e-5)
    changed = z_q.clone()
    changed[:, 6] = -changed[:, 6]
    assert torch.allclose(prior(changed)[:, :6], pred[:, :6], atol=1e-6)  # no look-ahead
    assert not torch.allclose(prior(changed)[:, 6:], pred[:, 6:], atol=1e-6)


def test_dropout_only_in_training() -> None:
    torch.manual_seed(4)
    z_q, _, _ = make_batch(2, 10, 16, 4)
    prior = small_prior(10, dropout=0.5)
    prior.eval()
    assert torch.equal(prior(z_q), prior(z_q))
    prior.train()
    assert not torch.equal(prior(z_q), prior(z_q))


def test_init_modes_and_codebook_must_be_detached() -> None:
    gpt2 = small_prior(10, init="gpt2")
    xavier = small_prior(10, init="xavier")
    assert gpt2.blocks[0].mlp[0].weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert xavier.blocks[0].mlp[0].weight.std().item() == pytest.approx((2 / (32 + 128)) ** 0.5, rel=0.1)
    z_q, indices, codebook = make_batch(2, 10, 16, 4)
    with pytest.raises(ValueError, match="detached codebook"):
        gpt2.loss(z_q, indices, codebook.requires_grad_(True), ss_rate=0.5)
    with pytest.raises(ValueError, match="must be 'gpt2' or 'xavier'"):
        PriorConfig(init="normal")
