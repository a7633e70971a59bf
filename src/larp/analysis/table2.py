"""Table 2 of the paper (ablations of LARP-B), reproduced with seeds: mean ± sample std over the sweep's seeds.

Rows are the ``table2`` variants of params (larp.sweeps); columns PSNR, LPIPS, rFVD and gFVD as the paper's Table 2
(Wang et al., ICLR 2025, §4.6), each distance named by its protocol and detector (a classifier distance is never
printed as FVD). ``Δ vs reference`` gives each row's mean difference to the reference row in units of the pooled
seed spread, so a reader can tell an effect from seed noise. The paper's numbers are quoted in their own column
block.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..sweeps import SWEEP, parse_run, sampling_runs, trained_runs
from .sweep_report import check_one_metric, run_scores
from .table1 import read_evals

# Paper Table 2 (Wang et al., ICLR 2025; "All configurations are modified from LARP-B"), verbatim, by our
# variant names.
PAPER_TABLE2: dict[str, tuple[str, float, float, float, float]] = {
    "larp": ("LARP-B", 27.88, 0.0855, 31, 107),
    "no-prior": ("No AR prior model", 27.95, 0.0830, 23, 190),
    "no-ss": ("No scheduled sampling in AR prior model", 27.85, 0.0856, 27, 142),
    "det-quant": ("Deterministic quantization", 27.65, 0.0884, 27, 149),
    "alpha-0-03": ("Small AR prior model loss weight (α = 0.03)", 27.83, 0.0866, 28, 120),
    "no-cfg": ("No CFG", 27.88, 0.0855, 31, 121),
}
METRICS = ("psnr", "lpips", "rfvd", "gfvd")
HIGHER_IS_BETTER = {"psnr": True, "lpips": False, "rfvd": False, "gfvd": False}


def collect_runs(params: Mapping[str, Any], tokenizer_evals: str | os.PathLike | Sequence[str | os.PathLike],
                 generator_evals: str | os.PathLike | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per sweep run: variant, seed, run, then ``run_scores`` (psnr, ssim, lpips, rfvd, gfvd and the metric
    names behind rfvd/gfvd, one pair for every run).

    A sampling-only run (e.g. no-cfg) takes its reconstruction columns from the reference run of its seed: it uses
    that run's tokenizer (as the paper's "No CFG" row repeats LARP-B's PSNR/LPIPS/rFVD)."""
    trained, sampled = trained_runs(params), sampling_runs(params)
    toks = dict(zip(trained, read_evals(tokenizer_evals, trained, "evaluate_tokenizer")))
    gens = dict(zip(trained + sampled, read_evals(generator_evals, trained + sampled, "evaluate_generator")))
    rows = []
    for name, gen in gens.items():
        variant, seed = parse_run(name)
        tok = toks[gen["tokenizer"]]  # the tokenizer run the generator was trained on
        rows.append({"variant": variant, "seed": seed, "run": name, **run_scores(tok, gen)})
    runs = pd.DataFrame(rows).sort_values(["variant", "seed"]).reset_index(drop=True)
    check_one_metric(runs, SWEEP)
    return runs


def pooled_delta(a: Any, b: Any) -> tuple[float, float, float]:
    """(mean a - mean b, pooled sample std sqrt((s_a² + s_b²) / 2), difference / pooled std). The pooled std needs two
    values on each side and the ratio a positive pooled std; otherwise they are NaN (the mean difference needs one)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else np.nan
    pooled = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)) if len(a) > 1 and len(b) > 1 else np.nan
    return diff, pooled, diff / pooled if np.isfinite(pooled) and pooled > 0 else np.nan


def summarize(runs: pd.DataFrame, order: list[str], reference: str) -> pd.DataFrame:
    """Per variant (in ``order``): n seeds, mean and sample std of each metric, and the difference of means to the
    reference divided by the pooled std of the two rows (NaN where a std is undefined, e.g. one seed)."""
    out = []
    ref = runs[runs.variant == reference]
    for variant in order:
        sub = runs[runs.variant == variant]
        row: dict[str, Any] = {"variant": variant, "seeds": int(sub.seed.nunique())}
        for m in METRICS:
            vals = pd.to_numeric(sub[m], errors="coerce").dropna().to_numpy(float)
            rv = pd.to_numeric(ref[m], errors="coerce").dropna().to_numpy(float)
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
            row[f"{m}_delta_in_std"] = pooled_delta(vals, rv)[2]
        out.append(row)
    return pd.DataFrame(out)


def _pm(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f}"


def _delta(x: float) -> str:
    return f"{x:+.1f}" if np.isfinite(x) else "n/a"


TITLE = "Table 2: ablations (measured, mean ± std over seeds) beside the paper's (quoted)"


def to_markdown(summary: pd.DataFrame, runs: pd.DataFrame, reference: str) -> str:
    rname, gname = runs.rfvd_metric.iloc[0], runs.gfvd_metric.iloc[0]
    lines = [
        f"# {TITLE}",
        "",
        f"Measured columns: PSNR (dB) and LPIPS of deterministic reconstructions; rFVD = `{rname}`; "
        f"gFVD = `{gname}` (names give protocol, detector, clip count and frames). "
        f"Δ/σ: (row mean − `{reference}` mean) / pooled seed std; |Δ/σ| < 2 is within seed noise.",
        "",
        "| Configuration | seeds | PSNR ↑ | LPIPS ↓ | rFVD ↓ | gFVD ↓ | Δ/σ gFVD | Δ/σ PSNR "
        "| paper PSNR | paper LPIPS | paper rFVD | paper gFVD |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        paper = PAPER_TABLE2.get(r.variant)
        label = f"{r.variant}" + (f" ({paper[0]})" if paper else "")
        q = [str(x) for x in paper[1:]] if paper else ["-"] * 4
        dg, dp = (("ref", "ref") if r.variant == reference
                  else (_delta(r.gfvd_delta_in_std), _delta(r.psnr_delta_in_std)))
        lines.append(f"| {label} | {r.seeds} | {_pm(r.psnr_mean, r.psnr_std, 2)} | {_pm(r.lpips_mean, r.lpips_std, 4)} "
                     f"| {_pm(r.rfvd_mean, r.rfvd_std, 1)} | {_pm(r.gfvd_mean, r.gfvd_std, 1)} | {dg} | {dp} | "
                     + " | ".join(q) + " |")
    lines += ["", "Paper values: Wang et al., ICLR 2025, Table 2 (LARP-B on UCF-101, I3D FVD); quoted, not measured.",
              "Per-seed values: table2_runs.csv.", ""]
    return "\n".join(lines)
