"""Invariants of the FVD engine: Fréchet distance closed forms, symmetry, exact shard merging, persistence."""

import numpy as np
import pytest
import scipy.linalg
import torch

from larp.metrics.fvd import FeatureStats, frechet_distance, fvd_from_stats, metric_name


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


def stats_of(x: np.ndarray) -> FeatureStats:
    s = FeatureStats(x.shape[1])
    s.update(x)
    return s


@pytest.mark.parametrize("d", [1, 4, 64])
def test_identical_gaussians_give_zero(d):
    rng = np.random.default_rng(d)
    mu, sigma = rng.standard_normal(d), random_cov(rng, d)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)


def test_identical_samples_give_zero():
    x = np.random.default_rng(0).standard_normal((300, 32)) * 3 + 5
    a, b = stats_of(x), stats_of(torch.from_numpy(x))  # ndarray and tensor inputs agree
    assert abs(fvd_from_stats(a, b)) < 1e-9


@pytest.mark.parametrize("d", [1, 3, 50])
def test_commuting_diagonal_closed_form(d):
    rng = np.random.default_rng(10 + d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    a, b = rng.uniform(0.01, 4, d), rng.uniform(0.01, 4, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_mean_shift_only_with_equal_covariances():
    rng = np.random.default_rng(3)
    sigma = random_cov(rng, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)


@pytest.mark.parametrize("d", [2, 20, 64])
def test_non_diagonal_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(20 + d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_cov(rng, d), random_cov(rng, d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the StyleGAN-V formula: tr sqrt(S1 S2)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_symmetric():
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.standard_normal(40), rng.standard_normal(40)
    s1, s2 = random_cov(rng, 40), random_cov(rng, 40)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-12)


def test_singular_covariances_are_handled():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 64))  # 10 samples in 64-d: rank-deficient covariances
    y = rng.standard_normal((10, 64)) + 1
    d = fvd_from_stats(stats_of(x), stats_of(y))
    assert np.isfinite(d) and d > 0


def test_non_psd_covariance_is_refused():
    sigma = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(np.zeros(2), sigma, np.zeros(2), np.eye(2))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="expected sigma2 of shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


def test_mean_and_biased_cov_match_numpy():
    x = np.random.default_rng(6).standard_normal((200, 12)) * 2 + 1
    s = stats_of(x)
    assert s.n == 200
    np.testing.assert_allclose(s.mean(), x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.cov(), np.cov(x, rowvar=False, bias=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_add", [False, True])
def test_merging_shards_equals_one_pass(use_add):
    x = np.random.default_rng(7).standard_normal((301, 24)) + 2
    whole = stats_of(x)
    shards = [stats_of(part) for part in np.array_split(x, 4)]
    merged = shards[0]
    for s in shards[1:]:
        merged = merged + s if use_add else merged.merge(s)
    assert merged.n == whole.n
    np.testing.assert_allclose(merged.mean(), whole.mean(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.cov(), whole.cov(), rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(8).standard_normal((150, 24))
    assert fvd_from_stats(merged, stats_of(y)) == pytest.approx(fvd_from_stats(whole, stats_of(y)), rel=1e-12)


def test_merge_refuses_other_dim():
    with pytest.raises(ValueError, match="dim 4"):
        FeatureStats(4).merge(FeatureStats(5))


def test_save_load_round_trip_is_exact_and_atomic(tmp_path):
    s = stats_of(np.random.default_rng(9).standard_normal((50, 8)))
    path = tmp_path / "stats.npz"
    s.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.npz"]  # no temp file left, no suffix added
    t = FeatureStats.load(path)
    assert t.n == s.n and t.dim == s.dim
    np.testing.assert_array_equal(t.sum, s.sum)
    np.testing.assert_array_equal(t.sum_sq, s.sum_sq)


def test_load_refuses_foreign_npz(tmp_path):
    np.savez(tmp_path / "mu_sigma.npz", mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(ValueError, match="not a FeatureStats file"):
        FeatureStats.load(tmp_path / "mu_sigma.npz")


def test_update_validates_input():
    s = FeatureStats(3)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        s.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="no features"):
        s.mean()


def test_metric_name_always_names_the_detector():
    assert metric_name("i3d", "fvd", 2048, 16) == "fvd[i3d]_2048_16f"
    assert metric_name("clf-synthetic", "rfvd", 9537, 16) == "rfvd[clf-synthetic]_9537_16f"
    with pytest.raises(ValueError, match="detector_name"):
        metric_name("", "fvd", 2048, 16)
    with pytest.raises(ValueError, match="positive"):
        metric_name("i3d", "fvd", 0, 16)


def test_identical_fake_features_do_not_crash():
    """A collapsed generator (every video identical) gives a rounding-noise covariance: FVD is finite, not an error."""
    rng = np.random.default_rng(0)
    real = FeatureStats(16)
    real.update(rng.normal(3.0, 1.0, size=(200, 16)))
    fake = FeatureStats(16)
    fake.update(np.tile(rng.normal(3.0, 1.0, size=(1, 16)) * 1234.567, (200, 1)))
    value = fvd_from_stats(real, fake)
    assert np.isfinite(value) and value > 0
    assert abs(fvd_from_stats(fake, real) - value) < 1e-6 * value
