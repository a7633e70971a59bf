"""The paper's scaling figures reproduced: rFVD and gFVD against the number of tokens with and without the AR prior
(Fig. 3b, Fig. 1b) and against the tokenizer size (Fig. 3a).

Runs are the ``scaling`` points x seeds of params (larp.sweeps), evaluated by the ordinary stages. ``scaling.figures``
say how points become plots: x is each run's measured token count (``x: tokens``) or tokenizer parameter count
without the prior (``x: params``), both read from its evaluation; each series is an ordered list of points drawn as
one line, at the mean over seeds with the sample std as error bar when there are several seeds. Distances are named
by protocol and detector (a classifier distance is never called FVD). The paper gives these results as figures only,
so its stated trends (Wang et al., ICLR 2025, §4.2 and §4.6) are quoted beside the measured table, not its numbers.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StageError
from ..config import variant_section
from ..sweeps import entries, parse_run, trained_runs
from .plots import _pyplot, _save
from .sweep_report import check_one_metric, run_scores
from .table1 import fmt_count, read_evals
from .table2 import _pm

SWEEP = "scaling"
X_COLUMN = {"tokens": "tokens", "params": "params_tokenizer"}  # figure `x` -> column of the runs table
METRICS = ("psnr", "ssim", "lpips", "rfvd", "gfvd")
PANELS = (("rfvd", "rFVD"), ("gfvd", "gFVD"))  # the two panels of every figure
PAPER_TRENDS = (  # Wang et al., ICLR 2025, quoted
    ("Fig. 3a (§4.2)", "while rFVD consistently improves as the tokenizer size increases, gFVD saturates when scaling "
                       "from LARP-B to LARP-L"),
    ("Fig. 3b (§4.2)", "both rFVD and gFVD increase when fewer tokens are used to represent a video. However, the "
                       "rate of degradation in gFVD slows down when reducing from 512 to 256 tokens compared to rFVD"),
    ("Fig. 1b (§4.6)", "the improvement from using the AR prior model remains consistent across different token "
                       "numbers"),
)


def collect_runs(params: Mapping[str, Any], tokenizer_evals: str | os.PathLike | Sequence[str | os.PathLike],
                 generator_evals: str | os.PathLike | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per scaling run: point, seed, run, tokenizer preset and prior, tokens, parameter counts, PSNR, SSIM,
    LPIPS (None without the extra), rFVD, gFVD and the metric names behind them. All runs must share both metrics
    (one protocol, detector and clip count), or their distances could not share an axis."""
    runs = trained_runs(params, SWEEP)
    toks = dict(zip(runs, read_evals(tokenizer_evals, runs, "evaluate_tokenizer")))
    gens = read_evals(generator_evals, runs, "evaluate_generator")
    rows = []
    for name, gen in zip(runs, gens):
        point, seed = parse_run(name, SWEEP)
        tok = toks[gen["tokenizer"]]  # the tokenizer run the generator was trained on (its own)
        section = variant_section(params, "tokenizer", "tokenizers", name)
        rows.append({"point": point, "seed": seed, "run": name, "preset": section["preset"],
                     "use_prior": section["use_prior"], "tokens": tok["num_tokens"],
                     "params_tokenizer": tok["params_tokenizer"], "params_generator": gen["params_generator"],
                     **run_scores(tok, gen)})
    df = pd.DataFrame(rows)
    check_one_metric(df, SWEEP)
    order = {p: i for i, p in enumerate(entries(params, SWEEP))}
    return df.sort_values(["point", "seed"], key=lambda c: c.map(order) if c.name == "point" else c
                          ).reset_index(drop=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per point (in the runs' order): its settings, the number of seeds, and mean and sample std of each metric
    (std NaN with one seed)."""
    numeric = runs.assign(**{m: pd.to_numeric(runs[m], errors="coerce") for m in METRICS})
    by = numeric.groupby("point", sort=False)
    stats = by[list(METRICS)].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    fixed = by[["preset", "use_prior", "tokens", "params_tokenizer", "params_generator"]].first()
    return fixed.join(by.seed.nunique().rename("seeds")).join(stats).reset_index()


def figure_curves(summary: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """{series label: its points with x, rfvd/gfvd mean and std}, in the order the series lists them. Two points
    of one series at the same x (e.g. equal token counts) would draw a zig-zag: refused."""
    xcol, by_point = X_COLUMN[spec["x"]], summary.set_index("point")
    curves = {}
    for label, points in spec["series"].items():
        missing = [p for p in points if p not in by_point.index]
        if missing:
            raise StageError(f"series {label!r} names points {missing} without runs; runs exist for "
                             f"{list(by_point.index)}")
        df = by_point.loc[list(points)].reset_index()
        df["x"] = df[xcol]
        dup = df[df.x.duplicated(keep=False)]
        if len(dup):
            raise StageError(f"series {label!r}: points {list(dup.point)} share x = {dup.x.iloc[0]} ({spec['x']})")
        curves[label] = df
    return curves


def _xtick_label(value: float, x: str) -> str:
    return fmt_count(int(value)) if x == "params" else str(int(value))


def plot_figure(curves: Mapping[str, pd.DataFrame], spec: Mapping[str, Any], metric_names: Mapping[str, str],
                path: str | os.PathLike, title: str) -> Path:
    """Two panels, rFVD and gFVD against x (log scale, ticked at the runs' values), one line per series; error bars
    are the sample std over seeds where defined."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(10.0, 3.8))
    xs = sorted({float(v) for df in curves.values() for v in df.x})
    for ax, (metric, label) in zip(axes, PANELS, strict=True):
        for name, df in curves.items():
            std = df[f"{metric}_std"].to_numpy(float)
            ax.errorbar(df.x, df[f"{metric}_mean"], yerr=std if np.isfinite(std).any() else None, marker="o",
                        capsize=3, label=name)
        ax.set_xscale("log", base=2 if spec["x"] == "tokens" else 10)
        ax.set_xticks(xs, [_xtick_label(v, spec["x"]) for v in xs])
        ax.minorticks_off()
        ax.set_xlabel("\n".join(textwrap.wrap(spec["xlabel"], 50)))
        ax.set_ylabel(f"{label} ↓")
        ax.set_title(f"{label}: {metric_names[metric]}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def to_markdown(summary: pd.DataFrame, runs: pd.DataFrame, figures: Mapping[str, Mapping[str, Any]],
                curves: Mapping[str, Mapping[str, pd.DataFrame]]) -> str:
    rname, gname = runs.rfvd_metric.iloc[0], runs.gfvd_metric.iloc[0]
    lines = [
        "# Scaling: tokens with and without the AR prior, tokenizer size (measured)",
        "",
        f"rFVD = `{rname}`; gFVD = `{gname}` (names give protocol, detector, clip count and frames). Mean ± sample "
        "std over seeds; tokenizer parameters exclude the prior.",
        "",
        "| point | preset | prior | tokens | tokenizer params | generator params | seeds | PSNR ↑ | LPIPS ↓ "
        "| rFVD ↓ | gFVD ↓ |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines.append(f"| {r.point} | {r.preset} | {'yes' if r.use_prior else 'no'} | {r.tokens} "
                     f"| {fmt_count(r.params_tokenizer)} | {fmt_count(r.params_generator)} | {r.seeds} "
                     f"| {_pm(r.psnr_mean, r.psnr_std, 2)} | {_pm(r.lpips_mean, r.lpips_std, 4)} "
                     f"| {_pm(r.rfvd_mean, r.rfvd_std, 1)} | {_pm(r.gfvd_mean, r.gfvd_std, 1)} |")
    for name, spec in figures.items():
        xs = sorted({int(v) for df in curves[name].values() for v in df.x})
        lines += ["", f"## Figure `{name}`: rFVD and gFVD against {spec['xlabel']}", "", f"![{name}]({name}.png)", "",
                  "| series | metric | " + " | ".join(_xtick_label(x, spec["x"]) for x in xs) + " |",
                  "|---|---|" + "---|" * len(xs)]
        for label, df in curves[name].items():
            at = df.set_index(df.x.astype(int))
            for metric, mlabel in PANELS:
                cells = [f"{_pm(at.loc[x, f'{metric}_mean'], at.loc[x, f'{metric}_std'], 1)} ({at.loc[x, 'point']})"
                         if x in at.index else "" for x in xs]
                lines.append(f"| {label} | {mlabel} | " + " | ".join(cells) + " |")
    lines += ["", "## What the paper states (quoted, not measured)", ""]
    lines += [f"- {where}: \"{text}\"" for where, text in PAPER_TRENDS]
    lines += ["", "Paper: Wang et al., ICLR 2025 (§4.2, §4.6), UCF-101, I3D FVD; its values appear only in the "
              "figures. Per-run values: runs.csv; per point: points.csv.", ""]
    return "\n".join(lines)
