"""Stage functions behind ``workflow/scripts/make_table1.py``, ``make_table2.py`` and ``make_scaling.py``: read the
evaluation files the rule passes, build the table or figures with larp.analysis, publish atomically, log to MLflow.

Each takes the exact evaluation files of its runs (``<run>.json``; a folder holding them works too), and the params
sections naming those runs (``tokenizers``/``generators``, ``table2``, ``scaling``) fix which rows appear and in what
order: a missing file names the evaluation job that makes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import scaling, table1, table2
from ..analysis.html import markdown_page
from ..analysis.sweep_report import log_sweep
from ..io import atomic_dir, atomic_file
from ..tracking import tracker_for

Evals = str | os.PathLike | Sequence[str | os.PathLike]  # the evaluation files, or one folder holding them
PathLike = str | os.PathLike


def run_make_table1(params: Mapping[str, Any], *, tokenizer_evals: Evals, generator_evals: Evals,
                    md_path: PathLike, csv_path: PathLike, html_path: PathLike) -> table1.Table:
    """Build Table 1 from the evaluations of every tokenizer and generator variant in params; write and track it."""
    toks = table1.read_evals(tokenizer_evals, list(params["tokenizers"]), "evaluate_tokenizer")
    gens = table1.read_evals(generator_evals, list(params["generators"]), "evaluate_generator")
    table = table1.build_table1(toks, gens, official=sorted(params.get("official") or {}))
    table1.write_table1(table, md_path, csv_path, html_path, table1.build_health_table(toks))
    with tracker_for(params, stage="make_table1", variant="table1", study="table1",
                     resolved={"tokenizers": params["tokenizers"], "generators": params["generators"]}) as tracker:
        tracker.log_metrics({f"{ev['variant']}/{key}": ev[key] for ev in toks + gens
                             for key in (ev["metric"], "psnr", "ssim", "lpips", "params_tokenizer", "params_generator")
                             if isinstance(ev.get(key), (int, float))})
        for path in (md_path, html_path, csv_path):
            tracker.log_artifact(path)
    return table


def run_make_table2(params: Mapping[str, Any], *, tokenizer_evals: Evals, generator_evals: Evals, md_path: PathLike,
                    csv_path: PathLike, runs_csv: PathLike, html_path: PathLike) -> pd.DataFrame:
    """Aggregate the sweep's evaluations, write the Markdown, its HTML page (for ``snakemake --report``) and the CSVs
    atomically, and log one MLflow parent run for the sweep with one child run per (variant, seed) carrying its
    overrides as parameters."""
    sw = params[table2.SWEEP]
    order = list(sw["variants"]) + list(sw.get("sampling_variants") or {})
    runs = table2.collect_runs(params, tokenizer_evals, generator_evals)
    summary = table2.summarize(runs, order, sw["reference"])
    md = table2.to_markdown(summary, runs, sw["reference"])
    for path, text in ((md_path, md), (html_path, markdown_page(md, table2.TITLE)),
                       (csv_path, summary.to_csv(index=False)), (runs_csv, runs.to_csv(index=False))):
        with atomic_file(path) as tmp:
            Path(tmp).write_text(text)
    log_sweep(params, table2.SWEEP, "variant", summary, runs, table2.METRICS, [md_path, html_path, csv_path])
    return summary


def run_make_scaling(params: Mapping[str, Any], *, tokenizer_evals: Evals, generator_evals: Evals,
                     out_dir: PathLike) -> pd.DataFrame:
    """Aggregate the scaling runs' evaluations; publish ``out_dir`` (runs.csv, points.csv, scaling.md, one PNG per
    figure) atomically; log one MLflow parent run for the sweep with one child run per (point, seed) carrying its
    overrides as parameters. Returns the per-point summary."""
    sw = params[scaling.SWEEP]
    runs = scaling.collect_runs(params, tokenizer_evals, generator_evals)
    summary = scaling.summarize(runs)
    curves = {name: scaling.figure_curves(summary, spec) for name, spec in sw["figures"].items()}
    metric_names = {"rfvd": runs.rfvd_metric.iloc[0], "gfvd": runs.gfvd_metric.iloc[0]}
    seeds = len(sw["seeds"])
    with atomic_dir(out_dir) as tmp:
        runs.to_csv(tmp / "runs.csv", index=False)
        summary.to_csv(tmp / "points.csv", index=False)
        (tmp / "scaling.md").write_text(scaling.to_markdown(summary, runs, sw["figures"], curves))
        for name, spec in sw["figures"].items():
            note = "; error bars: sample std over seeds" if seeds > 1 else ""
            scaling.plot_figure(curves[name], spec, metric_names, tmp / f"{name}.png",
                                f"scaling: {name} ({seeds} seed(s) per point{note})")
    log_sweep(params, scaling.SWEEP, "point", summary, runs, scaling.METRICS, sorted(Path(out_dir).iterdir()),
              run_metrics=("tokens", "params_tokenizer"))
    return summary
