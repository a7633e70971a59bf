"""larp.npzmap: token files are memory-mapped, not copied (issue 15 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from larp.generator.train import load_tokens
from larp.npzmap import chunked, load_npz


def _rss_file_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def test_stored_members_are_memory_maps_with_the_saved_values(tmp_path):
    a, b = np.arange(60, dtype=np.uint16).reshape(5, 12), np.arange(5, dtype=np.int64)
    np.savez(tmp_path / "x.npz", tokens=a, labels=b)
    got = load_npz(tmp_path / "x.npz", ["tokens", "labels"])
    assert isinstance(got["tokens"], np.memmap) and not got["tokens"].flags.writeable
    np.testing.assert_array_equal(got["tokens"], a)
    np.testing.assert_array_equal(got["labels"], b)
    with pytest.raises(KeyError, match="fp_cond"):
        load_npz(tmp_path / "x.npz", ["fp_cond"])


def test_compressed_members_are_read(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", tokens=np.ones((3, 4), np.uint16))
    got = load_npz(tmp_path / "c.npz", ["tokens"])["tokens"]
    assert not isinstance(got, np.memmap) and got.sum() == 12


def test_load_tokens_maps_and_a_full_scan_does_not_stay_resident(tmp_path):
    rows, n = 16384, 1024  # 32 MiB of uint16 ids per array
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", tokens=rng.integers(0, 512, (rows, n), dtype=np.uint16),
             fp_cond=rng.integers(0, 512, (rows, n), dtype=np.uint16), labels=np.zeros(rows, np.int64))
    (tmp_path / "meta.json").write_text(json.dumps({"num_tokens": n, "codebook_size": 512, "num_classes": 1}))
    before = _rss_file_mib()
    data = load_tokens(tmp_path, "train", "fp")  # scans both arrays for the id range
    assert isinstance(data.tokens, np.memmap) and isinstance(data.cond, np.memmap)
    assert sum(chunked(data.tokens, lambda x: int(x.sum(dtype=np.int64)))) == int(
        np.load(tmp_path / "train.npz")["tokens"].sum(dtype=np.int64))
    assert _rss_file_mib() - before < 16  # far below the 64 MiB scanned
