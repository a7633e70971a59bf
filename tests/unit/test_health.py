"""The tokenizer health report: moving pixels, static-frame baselines, permutation drop, codebook usage."""

import math

import pytest
import torch

from larp.metrics.health import HealthAccumulator, moving_mask, permute_tokens


def moving_square_clip(b=2, t=8, size=16, seed=0):
    """(B, 3, T, H, W): a flat grey background with a bright 3x3 square moving one pixel per frame."""
    g = torch.Generator().manual_seed(seed)
    video = torch.full((b, 3, t, size, size), 0.3) + 0.01 * torch.rand(b, 3, t, size, size, generator=g)
    for i in range(t):
        video[:, 0, i, 4:7, 2 + i:5 + i] = 1.0
    return video


def test_moving_mask_marks_the_moving_object_and_nothing_static():
    video = moving_square_clip()
    mask = moving_mask(video)
    assert mask.shape == (2, 1, 8, 16, 16)
    # the square's pixels are far from the median background: in the mask in every frame
    assert mask[:, 0, 3, 4:7, 5:8].all()
    # rows the square never visits hold only background noise (0.01): never moving
    assert not mask[:, :, :, 8:].any()


def test_report_against_hand_computed_baselines():
    video = moving_square_clip()
    recon = (video + 0.05).clamp(0, 1)  # uniform error 0.05 everywhere except where clamped
    acc = HealthAccumulator(codebook_size=8)
    idx = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    acc.add(video, recon, recon, idx)
    r = acc.report()
    mask = moving_mask(video).expand_as(video)
    mean_frame = video.mean(dim=2, keepdim=True).expand_as(video)
    se = (mean_frame - video).square()
    assert r["mean_frame_psnr_moving"] == pytest.approx(-10 * math.log10(se[mask].mean().item()), abs=1e-4)
    per_clip = -10 * torch.log10(se.flatten(1).mean(1))
    assert r["mean_frame_psnr"] == pytest.approx(per_clip.mean().item(), abs=1e-4)
    assert r["moving_fraction"] == pytest.approx(moving_mask(video).float().mean().item())
    # the reconstruction is 0.05 off (less where the square is clamped at 1): ~26 dB, above the mean frame (~24 dB)
    assert 26.0 <= r["psnr"] <= 26.5 and r["gain_over_mean_frame_db"] > 1
    assert r["moving_gain_over_mean_frame_db"] > 10
    # identical "permuted" decode: no drop; usage 4 of 8 codes; perplexity of counts (3, 3, 1, 1) / 8
    assert r["permutation_drop_db"] == pytest.approx(0.0)
    assert r["codes_used"] == 4 and r["codebook_usage"] == pytest.approx(0.5)
    p = torch.tensor([3, 3, 1, 1]) / 8
    assert r["perplexity"] == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_a_reconstruction_without_the_object_scores_as_the_median_frame():
    """The collapse the report exists to catch: background right, object missing = the median frame."""
    video = moving_square_clip()
    median = video.median(dim=2, keepdim=True).values.expand_as(video)
    acc = HealthAccumulator(codebook_size=4)
    acc.add(video, median, median, torch.zeros(2, 4, dtype=torch.long))
    r = acc.report()
    assert r["psnr_moving"] == pytest.approx(r["median_frame_psnr_moving"])
    assert r["moving_gain_over_mean_frame_db"] < 0  # worse than the mean frame on what moves
    assert r["codes_used"] == 1


def test_permutation_drop_is_large_when_order_matters():
    video = moving_square_clip()
    shifted = torch.roll(video, shifts=5, dims=-1)  # what decoding permuted patch tokens does: content misplaced
    acc = HealthAccumulator(codebook_size=4)
    acc.add(video, video * 0.99, shifted, torch.zeros(2, 4, dtype=torch.long))
    assert acc.report()["permutation_drop_db"] > 10


def test_permute_tokens_is_a_seeded_permutation_within_each_clip():
    ids = torch.arange(12).reshape(2, 6)
    a = permute_tokens(ids, torch.Generator().manual_seed(0))
    b = permute_tokens(ids, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert torch.equal(a.sort(dim=1).values, ids)
    assert not torch.equal(a, ids)


def test_no_moving_pixels_gives_none_not_a_crash():
    video = torch.full((1, 3, 4, 16, 16), 0.5)
    acc = HealthAccumulator(codebook_size=4)
    acc.add(video, video * 0.9, video * 0.9, torch.zeros(1, 4, dtype=torch.long))
    r = acc.report()
    assert r["psnr_moving"] is None and r["moving_gain_over_mean_frame_db"] is None
    assert r["moving_fraction"] == 0.0
