"""Invariants of the tokenizer's losses: GAN terms, LeCam, discriminator, LPIPS wrapper (facts §4, §8.2)."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm

from larp.tokenizer.losses import (
    Discriminator,
    DiscriminatorConfig,
    LeCam,
    LPIPSUnavailable,
    PerceptualLoss,
    d_loss_ns_smooth,
    g_loss_ns,
    l1_loss,
    smoothed_targets,
)
from larp.tokenizer.presets import count_parameters


def test_smoothed_label_ranges() -> None:
    torch.manual_seed(0)
    logits = torch.zeros(200_000)
    real, fake = smoothed_targets(logits, real=True), smoothed_targets(logits, real=False)
    assert real.min() >= 0.7 and real.max() <= 1.0 and fake.min() >= 0.0 and fake.max() <= 0.3
    assert (real == 0.7).any() and (fake == 0.3).any()  # both clamps are active (|N| > 2)
    clamped_mean = (2 / math.pi) ** 0.5 - 2 * (norm.pdf(2) - 2 * norm.sf(2))  # E[min(|N|, 2)]
    assert real.mean().item() == pytest.approx(1 - 0.15 * clamped_mean, abs=1e-3)
    assert fake.mean().item() == pytest.approx(0.15 * clamped_mean, abs=1e-3)


def test_d_loss_is_summed_bce_against_smoothed_targets() -> None:
    real_logits, fake_logits = torch.randn(16), torch.randn(16)
    torch.manual_seed(1)
    loss = d_loss_ns_smooth(real_logits, fake_logits)
    torch.manual_seed(1)
    real_t, fake_t = smoothed_targets(real_logits, True), smoothed_targets(fake_logits, False)
    expected = F.binary_cross_entropy_with_logits(real_logits, real_t) + F.binary_cross_entropy_with_logits(
        fake_logits, fake_t
    )
    assert torch.allclose(loss, expected)


def test_g_loss_and_l1() -> None:
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(g_loss_ns(x), -torch.log(torch.sigmoid(x)).mean())
    assert l1_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == 1.0


def test_lecam_uses_then_updates_emas() -> None:
    lecam = LeCam(decay=0.9)
    real = torch.tensor([1.0, 3.0], requires_grad=True)
    fake = torch.tensor([-1.0, -3.0], requires_grad=True)
    reg = lecam(real, fake)  # EMAs are 0 when used: relu(2 - 0)² + relu(0 - (-2))² = 8
    assert reg.item() == pytest.approx(8.0)
    assert lecam.ema_real.item() == pytest.approx(0.2) and lecam.ema_fake.item() == pytest.approx(-0.2)
    reg.backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
    reg2 = lecam(torch.tensor([1.0]), torch.tensor([1.0]))  # relu(1 + 0.2)² + relu(0.2 - 1)² = 1.44
    assert reg2.item() == pytest.approx(1.44)
    assert set(dict(lecam.named_buffers())) == {"ema_real", "ema_fake"}


def test_discriminator_shape_gradient_and_size() -> None:
    torch.manual_seed(2)
    cfg = DiscriminatorConfig(width=32, depth=1, heads=2, frames=8, resolution=16)
    disc = Discriminator(cfg)
    video = torch.rand(3, 3, 8, 16, 16, requires_grad=True)
    logits = disc(video)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert video.grad.abs().sum() > 0 and disc.cls.grad.abs().sum() > 0
    with torch.device("meta"):
        script = Discriminator(DiscriminatorConfig())  # 512 wide, 12 layers: ≈ 38.2M (facts §9)
    count = count_parameters(script)
    assert abs(count / 1e6 - 38.2) < 0.1, f"discriminator has {count:,} params, facts §9 say ≈ 38.2M"


def test_perceptual_loss_unavailable_names_both_remedies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lpips", None)  # behave as here: lpips not installed
    with pytest.raises(LPIPSUnavailable) as info:
        PerceptualLoss()
    message = str(info.value)
    assert "pip install -e '.[lpips]'" in message and "lpips_weight: 0" in message and "torch hub cache" in message
