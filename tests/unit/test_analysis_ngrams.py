"""N-gram statistics of paper App. B.4 (histograms, skew, class dominance Eq. 9-10) against brute force."""

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest

from larp.analysis.ngrams import (
    class_dominance,
    decode_ngram_keys,
    dominance_area,
    frequency_histogram,
    gini,
    ngram_counts,
    ngram_keys,
    skew_summary,
)
from larp.analysis.plots import plot_dominance, plot_ngram_histograms

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_tokens(n_seq=7, length=9, vocab=5, seed=0, dtype=np.int64):
    return np.random.default_rng(seed).integers(0, vocab, size=(n_seq, length)).astype(dtype)


def brute_counts(tokens, n):
    """Counter of n-gram tuples, within each sequence only."""
    c = Counter()
    for row in tokens.tolist():
        for i in range(len(row) - n + 1):
            c[tuple(row[i : i + n])] += 1
    return c


def as_tuples(counts: pd.Series, n: int, vocab: int) -> dict:
    grams = decode_ngram_keys(counts.index.to_numpy(), n, vocab_size=vocab)
    return {tuple(int(t) for t in g): int(c) for g, c in zip(grams, counts.to_numpy(), strict=True)}


# ----------------------------------------------------------------------------------------------------------
# counts


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.int32])
@pytest.mark.parametrize("seed", [0, 1])
def test_counts_match_brute_force(n, dtype, seed):
    tokens = random_tokens(seed=seed, dtype=dtype)
    counts = ngram_counts(tokens, n, vocab_size=5)
    assert counts.dtype == np.int64 and counts.index.is_monotonic_increasing and counts.index.is_unique
    assert as_tuples(counts, n, 5) == dict(brute_counts(tokens, n))
    assert counts.sum() == tokens.shape[0] * (tokens.shape[1] - n + 1)


def test_counts_with_a_larger_vocab_than_used_keep_stable_keys():
    tokens = random_tokens(vocab=5)
    small, large = ngram_counts(tokens, 2, vocab_size=5), ngram_counts(tokens, 2, vocab_size=300)
    assert as_tuples(small, 2, 5) == as_tuples(large, 2, 300)
    assert not np.array_equal(small.index, large.index)  # the key depends on the base, hence the required arg


def test_no_ngram_crosses_two_sequences():
    tokens = np.array([[0, 1], [2, 3]])
    assert as_tuples(ngram_counts(tokens, 2, vocab_size=4), 2, 4) == {(0, 1): 1, (2, 3): 1}  # no (1, 2)
    assert as_tuples(ngram_counts(tokens, 1, vocab_size=4), 1, 4) == {(0,): 1, (1,): 1, (2,): 1, (3,): 1}


def test_full_length_ngram_and_key_layout():
    tokens = np.array([[1, 2, 3], [1, 2, 3], [0, 0, 4]])
    counts = ngram_counts(tokens, 3, vocab_size=5)
    assert counts.to_dict() == {0 * 25 + 0 * 5 + 4: 1, 1 * 25 + 2 * 5 + 3: 2}  # first token most significant
    np.testing.assert_array_equal(ngram_keys(tokens, 2, vocab_size=5), [[7, 13], [7, 13], [0, 4]])


@pytest.mark.parametrize(
    "tokens, n, vocab, match",
    [
        (np.zeros((2, 4), int), 0, 5, "n-gram order"),
        (np.zeros((2, 4), int), 5, 5, "n-gram order"),
        (np.zeros(4, int), 1, 5, "shape"),
        (np.zeros((2, 2, 2), int), 1, 5, "shape"),
        (np.array([[0, 5]]), 1, 5, "token ids"),
        (np.array([[-1, 0]]), 1, 5, "token ids"),
        (np.zeros((2, 4)), 1, 5, "integer"),
        (np.zeros((2, 4), int), 1, 0, "vocab_size"),
        (np.zeros((2, 8), int), 6, 8192, "int64"),
    ],
)
def test_bad_input_is_refused(tokens, n, vocab, match):
    with pytest.raises(ValueError, match=match):
        ngram_counts(tokens, n, vocab_size=vocab)


# ----------------------------------------------------------------------------------------------------------
# histogram and skew


@pytest.mark.parametrize("n", [1, 2, 3])
def test_histogram_sums_to_total(n):
    tokens = random_tokens(n_seq=30, length=12, vocab=4, seed=3)
    counts = ngram_counts(tokens, n, vocab_size=4)
    hist = frequency_histogram(counts)
    assert list(hist.columns) == ["frequency", "num_ngrams"]
    assert hist["frequency"].is_monotonic_increasing and hist["frequency"].is_unique
    assert (hist["frequency"] * hist["num_ngrams"]).sum() == counts.sum()
    assert hist["num_ngrams"].sum() == len(counts)
    expected = Counter(counts.tolist())
    assert dict(zip(hist["frequency"], hist["num_ngrams"], strict=True)) == expected


def test_histogram_drops_zero_counts():
    hist = frequency_histogram(pd.Series([0, 2, 2, 5]))
    assert hist.to_dict("list") == {"frequency": [2, 5], "num_ngrams": [2, 1]}


def test_gini_known_values():
    assert gini(np.array([1, 1, 1, 5])) == pytest.approx(0.375)  # mean |xi - xj| / (2 mean) by hand
    assert gini(np.full(10, 7)) == pytest.approx(0.0)
    assert gini(np.array([0] * 99 + [1])) == pytest.approx(0.99)


def test_uniform_distribution_is_not_skewed():
    vocab = 200
    tokens = np.tile(np.arange(vocab), (3, 1))  # every 1-gram exactly 3 times
    s = skew_summary(ngram_counts(tokens, 1, vocab_size=vocab), vocab, 1)
    assert s["unique"] == vocab and s["total"] == 3 * vocab and s["coverage"] == pytest.approx(1.0)
    assert s["entropy_bits"] == pytest.approx(np.log2(vocab))
    assert s["normalized_entropy"] == pytest.approx(1.0)
    assert s["gini"] == pytest.approx(0.0, abs=1e-12)
    assert s["top1pct_share"] == pytest.approx(0.01)


def test_normalized_entropy_uses_the_sample_size_when_it_is_smaller():
    vocab = 50
    tokens = np.array([[i, i + 1] for i in range(10)])  # 10 distinct 2-grams of 2500 possible
    s = skew_summary(ngram_counts(tokens, 2, vocab_size=vocab), vocab, 2)
    assert s["total"] == 10 and s["possible"] == 2500.0
    assert s["normalized_entropy"] == pytest.approx(1.0)  # log2(10) / log2(min(10, 2500))


def test_concentrated_distribution_is_more_skewed():
    vocab, rng = 64, np.random.default_rng(0)
    uniform = rng.integers(0, vocab, size=(200, 16))
    zipf = np.minimum(rng.zipf(1.6, size=(200, 16)) - 1, vocab - 1)
    su = skew_summary(ngram_counts(uniform, 2, vocab_size=vocab), vocab, 2)
    sz = skew_summary(ngram_counts(zipf, 2, vocab_size=vocab), vocab, 2)
    assert sz["entropy_bits"] < su["entropy_bits"]
    assert sz["normalized_entropy"] < su["normalized_entropy"] - 0.2
    assert sz["gini"] > su["gini"] + 0.2
    assert sz["top1pct_share"] > su["top1pct_share"]
    assert sz["max_count"] > su["max_count"]


def test_skew_of_nothing_is_refused():
    with pytest.raises(ValueError, match="no n-gram"):
        skew_summary(pd.Series([], dtype=np.int64), 4, 2)


# ----------------------------------------------------------------------------------------------------------
# class dominance (Eq. 9-10)


def brute_dominance(tokens, labels, threshold, n):
    per_class = defaultdict(Counter)
    for row, label in zip(tokens.tolist(), labels.tolist(), strict=True):
        for i in range(len(row) - n + 1):
            per_class[tuple(row[i : i + n])][label] += 1
    out = {}
    for gram, by_class in per_class.items():
        total = sum(by_class.values())
        if total >= threshold:
            top = max(by_class.values())
            dominant = min(c for c, k in by_class.items() if k == top)
            out[gram] = (total, dominant, top / total)
    return out


@pytest.mark.parametrize("n, threshold", [(2, 1), (2, 6), (2, 15), (1, 10), (3, 2)])
def test_class_dominance_matches_brute_force(n, threshold):
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 4, size=(40, 6))
    labels = rng.choice(np.array([3, 7, 9]), size=40)  # non-contiguous labels are reported as given
    df = class_dominance(tokens, labels, vocab_size=4, threshold=threshold, n=n)
    assert list(df.columns) == ["ngram", "count", "dominant_class", "score"]
    got = {
        tuple(int(t) for t in decode_ngram_keys([row.ngram], n, vocab_size=4)[0]):
            (int(row.count), int(row.dominant_class), row.score)
        for row in df.itertuples()
    }
    expected = brute_dominance(tokens, labels, threshold, n)
    assert got.keys() == expected.keys() and len(got) > 0
    for gram, (total, dominant, score) in expected.items():
        assert got[gram][:2] == (total, dominant)
        assert got[gram][2] == pytest.approx(score)
    assert (df["count"] >= threshold).all()
    assert df["score"].is_monotonic_decreasing
    assert ((df["score"] >= 1 / 3 - 1e-12) & (df["score"] <= 1)).all()


def test_single_class_ngram_scores_one_and_uniform_spread_scores_one_over_c():
    # 2-gram (3, 3) only in class 1; (0, 1) and (1, 2) once in each of the 4 classes
    tokens = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [3, 3, 3]])
    labels = np.array([0, 1, 2, 3, 1])
    df = class_dominance(tokens, labels, vocab_size=4, threshold=2)
    by_gram = {tuple(decode_ngram_keys([k], 2, vocab_size=4)[0]): r for k, r in zip(df["ngram"], df.itertuples(),
                                                                                       strict=True)}
    assert by_gram[(3, 3)].score == 1.0 and by_gram[(3, 3)].dominant_class == 1 and by_gram[(3, 3)].count == 2
    assert by_gram[(0, 1)].score == pytest.approx(0.25) and by_gram[(1, 2)].score == pytest.approx(0.25)
    assert by_gram[(0, 1)].dominant_class == 0  # ties go to the smallest label
    assert df.iloc[0]["ngram"] == 3 * 4 + 3  # sorted by score descending
    area = dominance_area(df)
    assert area == {"area": pytest.approx(1.5), "mean_score": pytest.approx(0.5), "num_ngrams": 3}


def test_threshold_excludes_rare_ngrams():
    tokens = np.array([[0, 1, 0, 1], [2, 3, 0, 0]])
    df = class_dominance(tokens, np.array([0, 1]), vocab_size=4, threshold=2)
    assert df["ngram"].tolist() == [0 * 4 + 1]  # (0, 1) occurs twice; every other 2-gram once
    assert class_dominance(tokens, np.array([0, 1]), vocab_size=4, threshold=3).empty


def test_dominance_area_is_sum_of_scores():
    rng = np.random.default_rng(1)
    df = class_dominance(rng.integers(0, 6, size=(60, 8)), rng.integers(0, 5, size=60), vocab_size=6,
                         threshold=3)
    a = dominance_area(df, num_ngrams_norm=100)
    assert a["area"] == pytest.approx(df["score"].sum())
    assert a["num_ngrams"] == len(df) and a["mean_score"] == pytest.approx(df["score"].mean())
    assert a["area_norm"] == pytest.approx(df["score"].sum() / 100)
    assert "area_norm" not in dominance_area(df)


def test_class_dominance_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="labels"):
        class_dominance(np.zeros((3, 4), int), np.zeros(2, int), vocab_size=2, threshold=1)
    with pytest.raises(ValueError, match="threshold"):
        class_dominance(np.zeros((3, 4), int), np.zeros(3, int), vocab_size=2, threshold=-1)


# ----------------------------------------------------------------------------------------------------------
# figures


def test_ngram_figures_are_written(tmp_path):
    rng = np.random.default_rng(2)
    prior, flat = np.minimum(rng.zipf(1.5, size=(50, 10)) - 1, 15), rng.integers(0, 16, size=(50, 10))
    hists = {name: frequency_histogram(ngram_counts(t, 2, vocab_size=16)) for name, t in
             [("with prior", prior), ("no prior", flat)]}
    out = plot_ngram_histograms(hists, tmp_path / "fig" / "hist.png", "2-grams", max_frequency=30)
    assert out == tmp_path / "fig" / "hist.png" and out.read_bytes().startswith(PNG_MAGIC)
    labels = rng.integers(0, 3, size=50)
    curves = {name: class_dominance(t, labels, vocab_size=16, threshold=2) for name, t in
              [("with prior", prior), ("no prior", flat)]}
    out = plot_dominance(curves, tmp_path / "dominance.png")
    assert out.stat().st_size > 1000 and out.read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dominance.png", "fig", "hist.png"]  # no temp left
