"""PSNR / SSIM per clip and the per-frame resize used by the frame-prediction protocol."""

import math

import pytest
import torch
import torch.nn.functional as F

from larp.metrics.recon import psnr_per_clip, resize_videos, ssim_per_frame


def video(b=2, t=3, h=16, w=16, seed=0):
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed))


def test_psnr_identical_is_inf():
    v = video()
    assert torch.isinf(psnr_per_clip(v, v)).all()


def test_psnr_matches_known_mse():
    y = torch.full((2, 3, 4, 8, 8), 0.5)
    sign = torch.where(torch.rand(y.shape, generator=torch.Generator().manual_seed(1)) < 0.5, -1.0, 1.0)
    x = y + sign * torch.tensor([0.1, 0.01]).view(2, 1, 1, 1, 1)  # per-clip MSE 1e-2 and 1e-4
    p = psnr_per_clip(x, y)
    assert p.shape == (2,) and p.dtype == torch.float64
    torch.testing.assert_close(p, torch.tensor([20.0, 40.0], dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_psnr_clamps_the_reconstruction_only():
    y = torch.ones(1, 3, 2, 4, 4)
    assert math.isinf(psnr_per_clip(y + 0.2, y).item())  # x is clamped to [0, 1]
    assert psnr_per_clip(y, y + 0.1).item() == pytest.approx(20.0)  # y is not


def test_ssim_identical_is_one_and_decreases_with_noise():
    v = video(t=2, h=32, w=32)
    g = torch.Generator().manual_seed(2)
    noisy = [(v + s * torch.randn(v.shape, generator=g)).clamp(0, 1) for s in (0.05, 0.2)]
    same, low, high = ssim_per_frame(v, v), ssim_per_frame(noisy[0], v), ssim_per_frame(noisy[1], v)
    assert same.shape == (2,)
    torch.testing.assert_close(same, torch.ones(2), atol=1e-5, rtol=0)
    assert (low < 0.999).all() and (high < low).all()


def test_ssim_is_mean_over_frames():
    v = video(b=1, t=2, h=24, w=24)
    x = v.clone()
    x[:, :, 1] = (x[:, :, 1] + 0.3 * torch.randn(x[:, :, 1].shape)).clamp(0, 1)
    frame1 = ssim_per_frame(x[:, :, 1:], v[:, :, 1:])
    assert ssim_per_frame(x, v).item() == pytest.approx((1.0 + frame1.item()) / 2, abs=1e-6)


def test_ssim_refuses_tiny_frames():
    v = video(h=8, w=8)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_per_frame(v, v)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="equal shape"):
        psnr_per_clip(video(t=3), video(t=4))


def test_resize_keeps_frames_independent():
    v = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(2, 3, 4, 32, 32) / 4  # each frame a different constant
    out = resize_videos(v, 8)
    assert out.shape == (2, 3, 4, 8, 8)
    torch.testing.assert_close(out, v[..., :8, :8])


def test_resize_by_two_without_antialias_is_2x2_average():
    v = video(b=1, t=2, h=16, w=16)
    out = resize_videos(v, 8, antialias=False)
    expected = F.avg_pool2d(v.transpose(1, 2).reshape(2, 3, 16, 16), 2).reshape(1, 2, 3, 8, 8).transpose(1, 2)
    torch.testing.assert_close(out, expected)


def test_antialiased_downsample_stays_in_range():
    v = video(b=1, t=2, h=128, w=128).round()  # hard 0/1 pixels
    out = resize_videos(v, 64)
    assert out.min() >= 0 and out.max() <= 1 and out.shape[-2:] == (64, 64)
