"""Stage functions behind ``workflow/scripts/make_synthetic.py`` and ``extract_clips.py``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.clips import SPLITS, ClipConfig, ExtractionError, extract_clips, summary_metrics
from ..data.datasets import check_root, dataset_entry, list_videos
from ..data.synthetic import SyntheticConfig, make_synthetic
from ..errors import StageError
from ..tracking import tracker_for


def run_make_synthetic(params: Mapping[str, Any], out: str | Path, threads: int) -> dict[str, Any]:
    cfg = SyntheticConfig.from_params(params["synthetic"])
    with tracker_for(params, stage="make_synthetic", variant="synthetic", study="data",
                     resolved={"synthetic": params["synthetic"]}) as tracker:
        summary = make_synthetic(cfg, out, threads=threads)
        tracker.log_metrics({k: summary[k] for k in ("videos", "classes", "bytes", "seconds")})
    print(f"make_synthetic: {summary['videos']} videos of {summary['classes']} classes in {out} "
          f"({summary['seconds']:.1f} s)")
    return summary


def run_extract_clips(params: Mapping[str, Any], dataset: str, *, root: str | Path, out: str | Path,
                      metrics_path: str | Path, threads: int) -> dict[str, Any]:
    """Check the dataset and list both splits (errors name the missing path, before any work or tracking), then
    extract, publish the store atomically and write the flat metrics file DVC shows."""
    ds = dataset_entry(params, dataset)
    check_root(ds, str(root))
    cfg = ClipConfig.from_params(params["clips"])
    listings = {split: list_videos(ds, split) for split in SPLITS}
    with tracker_for(params, stage="extract_clips", variant=dataset, study="data",
                     resolved={"dataset": ds, "clips": params["clips"]}) as tracker:
        try:
            summary = extract_clips(dataset, ds, cfg, out, threads=threads, listings=listings,
                                    metrics_path=metrics_path)
        except ExtractionError as exc:
            raise StageError(str(exc)) from exc
        metrics = summary_metrics(summary)
        tracker.log_metrics(metrics)
        tracker.log_artifact(Path(out) / "failures.csv")
    print(f"extract_clips: {dataset}: " + ", ".join(
        f"{split} {c['ok']}/{c['listed']} videos, {c['frames']} frames" for split, c in summary["splits"].items()))
    return summary
