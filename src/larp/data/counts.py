"""Clip and group counts that follow from the parameters alone, importable without torch, pandas or av.

The parameter validation (larp.config, run at every Snakemake parse) sizes the synthetic gFVD pools with them;
larp.data.synthetic and larp.data.clips use (and re-export) the same definitions.
"""

from __future__ import annotations

SPLIT_GROUPS = 7  # UCF-101: split k tests on groups 7(k-1)+1 .. 7k


def tested_groups(split: int, groups: int) -> range:
    """Groups (1-based) tested in official-style split ``split`` (1..3)."""
    return range(SPLIT_GROUPS * (split - 1) + 1, min(groups, SPLIT_GROUPS * split) + 1)


def chunks_per_video(num_frames: int, length: int) -> int:
    """Windows of the gFVD pool in one video of ``num_frames`` stored frames: non-overlapping from frame 0."""
    return num_frames // length
