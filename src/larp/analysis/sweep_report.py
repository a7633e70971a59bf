"""What every sweep report (Table 2, scaling) shares: one row of scores per run from its evaluations, the check that
all runs were scored with one metric, and the MLflow layout (one parent run per sweep, one child per run)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StageError
from ..sweeps import run_overrides
from ..tracking import tracker_for


def run_scores(tok: Mapping[str, Any], gen: Mapping[str, Any]) -> dict[str, Any]:
    """A run's scores from its evaluate_tokenizer and evaluate_generator outputs: PSNR, SSIM, LPIPS (None where not
    computed), rFVD and gFVD under each evaluation's own metric, and those metric names."""
    return {"psnr": tok.get("psnr"), "ssim": tok.get("ssim"), "lpips": tok.get("lpips"),
            "rfvd": tok[tok["metric"]], "gfvd": gen[gen["metric"]],
            "rfvd_metric": tok["metric"], "gfvd_metric": gen["metric"]}


def check_one_metric(runs: pd.DataFrame, sweep: str) -> None:
    """All runs share the rFVD and the gFVD metric (one protocol, detector and clip count), or their distances
    could not be averaged over seeds nor compared."""
    for col in ("rfvd_metric", "gfvd_metric"):
        if runs[col].nunique() > 1:
            found = runs.groupby(col).run.apply(list).to_dict()
            raise StageError(f"{sweep} runs were scored with different {col.split('_')[0]} metrics {found}; "
                             "re-run evaluate_tokenizer / evaluate_generator with one evaluation section")


def log_sweep(params: Mapping[str, Any], sweep: str, entry: str, summary: pd.DataFrame, runs: pd.DataFrame,
              metrics: Sequence[str], artifacts: Iterable[str | Path], run_metrics: Sequence[str] = ()) -> None:
    """One MLflow parent run ``make_<sweep>`` (the sweep section as parameters, each ``<entry>/<metric>_{mean,std}``
    of ``summary``, the report files) with one child per run (its entry, seed and tokenizer / generator overrides as
    parameters, its ``metrics`` and ``run_metrics`` values), so ``mlflow ui`` compares the runs side by side."""
    with tracker_for(params, stage=f"make_{sweep}", variant="sweep", study=sweep,
                     resolved={sweep: dict(params[sweep])}) as parent:
        parent.log_metrics({f"{r[entry]}/{m}_{s}": float(r[f"{m}_{s}"]) for _, r in summary.iterrows()
                            for m in metrics for s in ("mean", "std") if np.isfinite(r[f"{m}_{s}"])})
        for path in artifacts:
            parent.log_artifact(path)
        for _, r in runs.iterrows():
            resolved = {entry: r[entry], "seed": int(r.seed),
                        "tokenizer_overrides": run_overrides(params, "tokenizer", r.run),
                        "generator_overrides": run_overrides(params, "generator", r.run)}
            with tracker_for(params, stage=sweep, variant=r.run, study=sweep, resolved=resolved,
                             parent_run_id=parent.run_id) as child:
                child.set_tags({f"{sweep}_{entry}": r[entry], "seed": str(r.seed)})
                child.log_metrics({m: float(r[m]) for m in (*metrics, *run_metrics)
                                   if r[m] is not None and np.isfinite(float(r[m]))})
