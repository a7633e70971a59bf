"""N-gram statistics of token sequences: the AR-prior analysis of paper App. B.4 (Fig. 12-15, Eq. 9-10).

An n-gram is n consecutive token ids inside one sequence (never across two sequences). It is stored as one
int64 key in mixed radix with base ``vocab_size`` (K), most significant digit first:
``key = t_0 K^(n-1) + t_1 K^(n-2) + ... + t_(n-1)``; :func:`decode_ngram_keys` inverts it. Taking K as a
required argument (not ``tokens.max() + 1``) keeps keys comparable between two token sets, e.g. with and
without the AR prior.

Everything is vectorised with numpy (``np.unique`` on the keys), so 10^7 tokens take about a second.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

INT64_MAX = np.iinfo(np.int64).max


# ----------------------------------------------------------------------------------------------------------
# Keys


def _check_tokens(tokens: np.ndarray, vocab_size: int, n: int) -> np.ndarray:
    """Validate (N, L) integer ids in [0, vocab_size) and 1 <= n <= L; return them as int64."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"expected tokens of shape (N, L) but found {tokens.ndim} dimensions {tokens.shape}")
    if not (np.issubdtype(tokens.dtype, np.integer) and tokens.dtype != np.bool_):
        raise ValueError(f"expected integer token ids but found dtype {tokens.dtype}")
    if not (isinstance(vocab_size, (int, np.integer)) and vocab_size >= 1):
        raise ValueError(f"expected vocab_size an integer >= 1 but found {vocab_size!r}")
    length = tokens.shape[1]
    if not (isinstance(n, (int, np.integer)) and 1 <= n <= length):
        raise ValueError(f"expected n-gram order n in [1, L={length}] but found {n!r}")
    if int(vocab_size) ** int(n) - 1 > INT64_MAX:
        raise ValueError(f"vocab_size**n = {vocab_size}**{n} does not fit an int64 key; use a smaller n")
    if tokens.size:
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"expected token ids in [0, {vocab_size}) but found ids in [{lo}, {hi}]")
    return tokens.astype(np.int64, copy=False)


def ngram_keys(tokens: np.ndarray, n: int, *, vocab_size: int) -> np.ndarray:
    """Key of every contiguous n-gram of every sequence: tokens (N, L) -> keys (N, L - n + 1) int64."""
    tokens = _check_tokens(tokens, vocab_size, n)
    windows = tokens.shape[1] - n + 1
    keys = np.zeros((tokens.shape[0], windows), dtype=np.int64)  # (N, L - n + 1)
    for j in range(n):  # Horner's scheme over the n digits; each step is one vectorised pass
        keys = keys * vocab_size + tokens[:, j : j + windows]
    return keys


def decode_ngram_keys(keys: np.ndarray, n: int, *, vocab_size: int) -> np.ndarray:
    """Inverse of :func:`ngram_keys`: keys (M,) -> token ids (M, n), first token in column 0."""
    keys = np.asarray(keys, dtype=np.int64).ravel()
    powers = vocab_size ** np.arange(n - 1, -1, -1, dtype=np.int64)  # (n,)
    return (keys[:, None] // powers[None, :]) % vocab_size  # (M, n)


# ----------------------------------------------------------------------------------------------------------
# Counts and histograms (Fig. 12-14)


def ngram_counts(tokens: np.ndarray, n: int, *, vocab_size: int) -> pd.Series:
    """Occurrences of every n-gram that occurs (paper App. B.4, "N-gram Histogram").

    tokens (N, L) integer ids in [0, vocab_size); n-grams are counted within each sequence, never across two.
    Returns a Series indexed by the n-gram key (index name ``ngram``, ascending), values = counts (int64,
    all >= 1, name ``count``). Raises ValueError for non-2D or non-integer input, ids outside [0, vocab_size),
    n outside [1, L], or vocab_size**n beyond int64.
    """
    keys = ngram_keys(tokens, n, vocab_size=vocab_size)  # (N, L - n + 1)
    uniq, counts = np.unique(keys.ravel(), return_counts=True)
    return pd.Series(counts.astype(np.int64), index=pd.Index(uniq, name="ngram"), name="count")


def _check_counts(counts: pd.Series) -> np.ndarray:
    values = np.asarray(counts)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"expected a 1-D Series of integer counts but found dtype {values.dtype}, "
                         f"shape {values.shape}")
    if values.size and values.min() < 0:
        raise ValueError(f"expected non-negative counts but found {values.min()}")
    return values[values > 0].astype(np.int64)


def frequency_histogram(counts: pd.Series) -> pd.DataFrame:
    """The axes of paper Fig. 12-14: ``frequency`` (an occurrence count) and ``num_ngrams`` (how many unique
    n-grams occur exactly that many times), ascending in frequency. Zero counts (unseen n-grams) are dropped,
    so sum(frequency * num_ngrams) equals the total number of n-gram occurrences."""
    values = _check_counts(counts)
    freq, num = np.unique(values, return_counts=True)
    return pd.DataFrame({"frequency": freq.astype(np.int64), "num_ngrams": num.astype(np.int64)})


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, -> 1 when one value holds everything.

    G = 2 sum_i i x_(i) / (m sum x) - (m + 1) / m with x_(1) <= ... <= x_(m) (i from 1).
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    m, total = x.size, x.sum()
    if m == 0 or total == 0:
        raise ValueError("gini: expected at least one positive value")
    ranks = np.arange(1, m + 1, dtype=np.float64)
    return float(2.0 * np.dot(ranks, x) / (m * total) - (m + 1) / m)


def skew_summary(counts: pd.Series, vocab_size: int, n: int) -> dict[str, float | int]:
    """How skewed an n-gram distribution is (paper App. B.4: the prior makes "a small number of n-grams occur
    significantly more frequently than others"). Higher skew = lower entropy and higher Gini.

    - ``unique``: distinct n-grams seen; ``total``: all occurrences; ``possible``: vocab_size**n (a float, it
      can exceed int64); ``coverage``: unique / possible.
    - ``entropy_bits``: Shannon entropy (bits) of the empirical distribution p(b) = count(b) / total.
    - ``normalized_entropy``: entropy_bits / log2(min(total, vocab_size**n)). The denominator is the largest
      entropy that ``total`` draws over vocab_size**n possible n-grams can show (every draw a different
      n-gram, or all n-grams equally often), so 1 means "as uniform as the sample size permits" and the value
      is comparable between runs with the same number of sequences even when total << vocab_size**n (as in
      the paper: 10^6 sequences, 8192^2 2-grams). It is defined as 1.0 when that maximum is 0 bits
      (total == 1 or a single possible n-gram).
    - ``gini``: Gini coefficient of the counts of the n-grams that occur (unseen ones are not counted, so a
      uniform spread over the seen n-grams gives 0).
    - ``top1pct_share``: share of all occurrences taken by the most frequent 1 % of distinct n-grams
      (at least one n-gram); about 0.01 for a uniform distribution.
    - ``max_count``: occurrences of the most frequent n-gram.
    """
    values = _check_counts(counts)
    if values.size == 0:
        raise ValueError("skew_summary: no n-gram occurs (all counts are zero or the Series is empty)")
    total = int(values.sum())
    p = values / total
    entropy = float(-(p * np.log2(p)).sum())
    possible = int(vocab_size) ** int(n)
    max_entropy = math.log2(min(total, possible))
    top = max(1, math.ceil(0.01 * values.size))
    top_share = float(np.sort(values)[::-1][:top].sum() / total)
    return {
        "unique": int(values.size),
        "total": total,
        "possible": float(possible),
        "coverage": float(values.size / possible),
        "entropy_bits": entropy,
        "normalized_entropy": entropy / max_entropy if max_entropy > 0 else 1.0,
        "gini": gini(values),
        "top1pct_share": top_share,
        "max_count": int(values.max()),
    }


# ----------------------------------------------------------------------------------------------------------
# Class dominance (Eq. 9-10, Fig. 15)


def class_dominance(tokens: np.ndarray, labels: np.ndarray, vocab_size: int, threshold: int,
                    n: int = 2) -> pd.DataFrame:
    """Class dominance score of every frequent n-gram (paper App. B.4, Eq. 9-10).

    S(b) = max_c n(b, c) / n(b), kept for n-grams with n(b) >= threshold (Eq. 10), where n(b, c) counts the
    occurrences of b in sequences of class c. tokens (N, L) ids, labels (N,) integer class of each sequence
    (any integers; reported as given). Returns columns ``ngram`` (key, see :func:`decode_ngram_keys`),
    ``count`` = n(b), ``dominant_class`` (the argmax class; ties go to the smallest label), ``score`` = S(b),
    sorted by score descending (then count descending, then key ascending).
    """
    keys = ngram_keys(tokens, n, vocab_size=vocab_size)  # (N, W)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != keys.shape[0]:
        raise ValueError(f"expected labels of shape ({keys.shape[0]},) but found {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer class labels but found dtype {labels.dtype}")
    if not (isinstance(threshold, (int, np.integer)) and threshold >= 0):
        raise ValueError(f"expected threshold an integer >= 0 but found {threshold!r}")
    classes, label_idx = np.unique(labels, return_inverse=True)  # (C,), (N,) in [0, C)
    num_classes = max(len(classes), 1)
    if (int(vocab_size) ** int(n)) * num_classes - 1 > INT64_MAX:
        raise ValueError(f"vocab_size**n * num_classes = {vocab_size}**{n} * {num_classes} does not fit int64")
    joint = keys * num_classes + label_idx.astype(np.int64)[:, None]  # (N, W): (n-gram, class) pair key
    pair, pair_count = np.unique(joint.ravel(), return_counts=True)  # sorted: grouped by n-gram
    gram, cls = pair // num_classes, pair % num_classes
    # within each n-gram: largest count first, then smallest class
    order = np.lexsort((cls, -pair_count, gram))
    gram, cls, pair_count = gram[order], cls[order], pair_count[order]
    starts = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]])  # first row of each n-gram
    totals = np.add.reduceat(pair_count, starts)  # n(b), (B,)
    keep = totals >= threshold
    df = pd.DataFrame({
        "ngram": gram[starts][keep].astype(np.int64),
        "count": totals[keep].astype(np.int64),
        "dominant_class": classes[cls[starts][keep]],
        "score": pair_count[starts][keep] / np.maximum(totals[keep], 1),
    })
    df = df.sort_values(["score", "count", "ngram"], ascending=[False, False, True], kind="stable")
    return df.reset_index(drop=True)


def dominance_area(df: pd.DataFrame, num_ngrams_norm: int | None = None) -> dict[str, float | int]:
    """Area under the sorted class-dominance curve of paper Fig. 15 (one unit of x per n-gram).

    ``area`` = sum of the scores, ``mean_score`` = area / num_ngrams, ``num_ngrams`` = rows of ``df`` (the
    output of :func:`class_dominance`). With C classes an n-gram spread uniformly over the classes scores
    1/C (the minimum possible), so a prior-free latent space gives about num_ngrams / C; an n-gram seen in
    one class only scores 1. The 1/C floor is reached only when n(b) >> C: with few occurrences the largest
    class share is high by chance (n(b) = 3 scores at least 1/3), hence Eq. 10's threshold. With
    ``num_ngrams_norm`` (e.g. the larger of two curves' lengths, to compare them on one x range) the result also has
    ``area_norm`` = area / num_ngrams_norm.
    """
    if "score" not in df.columns:
        raise ValueError(f"expected a DataFrame with a 'score' column but found columns {list(df.columns)}")
    scores = np.sort(df["score"].to_numpy(dtype=np.float64))[::-1]
    out: dict[str, float | int] = {
        "area": float(scores.sum()),
        "mean_score": float(scores.mean()) if scores.size else 0.0,
        "num_ngrams": int(scores.size),
    }
    if num_ngrams_norm is not None:
        if num_ngrams_norm < 1:
            raise ValueError(f"expected num_ngrams_norm >= 1 but found {num_ngrams_norm}")
        out["area_norm"] = float(scores.sum() / num_ngrams_norm)
    return out


__all__ = [
    "class_dominance",
    "decode_ngram_keys",
    "dominance_area",
    "frequency_histogram",
    "gini",
    "ngram_counts",
    "ngram_keys",
    "skew_summary",
]
