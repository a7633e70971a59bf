"""The one place that talks to MLflow.

Default store: ``sqlite:///<repo>/mlflow.db`` with artifacts in ``<repo>/mlruns`` so that ``mlflow ui`` run from the
repository root shows every run with no server (MLflow 3.17 defaults and pitfalls: docs/tooling-notes.md §3).
``MLFLOW_TRACKING_URI`` in the environment wins over ``tracking.uri`` in params. One experiment per study
(``<prefix>-<study>``); runs are tagged with stage, variant, git commit and carry the resolved parameters: the stage's
sections after presets and overrides (model configurations in full, e.g. ``tokenizer.model.kind``) as params, and
every key of the merged params files as the artifact ``params.resolved.json``. Configuration that a stage reports in
its summary (seeds, frame and sample counts) is logged as params, results as metrics.

Tracking can be switched off in params (``tracking.enabled: false``); then every call is an explicit no-op. When it
is on, a failure to reach the store raises :class:`TrackingError` naming the store and the fix: it is never
silently swallowed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .runtime import git_commit


class TrackingError(RuntimeError):
    pass


# Keys of a stage's summary that are configuration (how the number was made), not results: logged as MLflow params
# so that they show in the params columns, not as metrics. Booleans are always params.
CONFIG_KEYS = frozenset({"seed", "frames", "resolution", "num_clips", "num_videos", "num_tokens", "cfg_scale",
                         "steps", "train_examples", "fp_context_frames", "classes"})


def is_config_key(key: str, value: Any) -> bool:
    """Whether a summary entry is configuration (CONFIG_KEYS, or a boolean), logged as a param."""
    return isinstance(value, bool) or re.split(r"[./]", key)[-1] in CONFIG_KEYS


def default_uri(root: str | os.PathLike | None = None) -> str:
    root = Path(root or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple, dict)) else v
    return out


class Tracker:
    """A run in an MLflow experiment; use as a context manager. Only rank 0 should create an enabled one."""

    def __init__(self, *, enabled: bool, experiment: str, run_name: str, tags: Mapping[str, str] | None = None,
                 params: Mapping[str, Any] | None = None, uri: str | None = None, parent_run_id: str | None = None,
                 full_params: Mapping[str, Any] | None = None):
        self.enabled = enabled
        self.experiment, self.run_name = experiment, run_name
        self.tags = dict(tags or {})
        self.params = dict(params or {})
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or uri or default_uri()
        self.parent_run_id = parent_run_id
        self.full_params = full_params
        self.run_id: str | None = None
        self._mlflow: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> Tracker:
        if not self.enabled:
            return self
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        try:
            import mlflow

            self._mlflow = mlflow
            mlflow.set_tracking_uri(self.uri)
            if self.uri.startswith("sqlite:///"):
                art = Path(self.uri.removeprefix("sqlite:///")).parent / "mlruns"
                if mlflow.get_experiment_by_name(self.experiment) is None:
                    mlflow.create_experiment(self.experiment, artifact_location=art.as_uri())
            mlflow.set_experiment(self.experiment)
            # a child may open while its parent is still active in this process (nested), or on its own
            run = mlflow.start_run(run_name=self.run_name, tags=self.tags, parent_run_id=self.parent_run_id,
                                   nested=self.parent_run_id is not None)
        except Exception as exc:  # noqa: BLE001 - re-raised with the store named
            raise TrackingError(
                f"MLflow tracking store {self.uri} could not be used ({type(exc).__name__}: {exc}). "
                "Fix the store or MLFLOW_TRACKING_URI, or set tracking.enabled: false in params.yaml."
            ) from exc
        self.run_id = run.info.run_id
        if self.params:
            self.log_params(self.params)
        if self.full_params is not None:  # every key the stage sees (its declared sections), for the record
            self.log_dict(self.full_params, "params.resolved.json")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.enabled and self._mlflow is not None:
            self._mlflow.end_run(status="FAILED" if exc_type else "FINISHED")

    # -- logging ------------------------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        flat = flatten(params)
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow batch limit
            self._mlflow.log_params({k: str(v)[:6000] for k, v in items[i:i + 100]})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Numbers as metrics (``step``: a training curve). In a summary (no ``step``) the configuration entries
        (:func:`is_config_key`: seeds, frame and sample counts, flags) go to the params instead."""
        if not self.enabled:
            return
        numbers = {k: v for k, v in metrics.items() if v is not None and isinstance(v, (int, float))}
        if step is None:
            config = {k: v for k, v in numbers.items() if is_config_key(k, v)}
            self._log_result_params(config)
            numbers = {k: v for k, v in numbers.items() if k not in config}
        clean = {k.replace("[", "_").replace("]", "_"): float(v) for k, v in numbers.items()}
        self._mlflow.log_metrics(clean, step=step)

    def _log_result_params(self, config: Mapping[str, Any]) -> None:
        """Configuration from a summary as params; a key already logged with another value (MLflow params are
        immutable) becomes the tag ``result.<key>`` instead of failing the stage."""
        for key, value in config.items():
            try:
                self._mlflow.log_param(key, value)
            except Exception:  # noqa: BLE001 - MlflowException: the param exists with a different value
                self._mlflow.set_tag(f"result.{key}", str(value))

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if self.enabled:
            self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_figure(self, fig: Any, name: str) -> None:
        if self.enabled:
            self._mlflow.log_figure(fig, name)

    def log_image(self, image: Any, name: str) -> None:
        if self.enabled:
            self._mlflow.log_image(image, artifact_file=name)

    def log_dict(self, d: Mapping[str, Any], name: str) -> None:
        if self.enabled:
            self._mlflow.log_dict(dict(d), name)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.enabled:
            self._mlflow.set_tags(dict(tags))


def tracker_for(params: Mapping[str, Any], *, stage: str, variant: str, study: str,
                resolved: Mapping[str, Any] | None = None, is_main: bool = True,
                parent_run_id: str | None = None) -> Tracker:
    """A tracker configured from the ``tracking`` section of params, tagged for this stage and variant."""
    t = params["tracking"]
    return Tracker(
        enabled=bool(t["enabled"]) and is_main,
        experiment=f"{t['experiment_prefix']}-{study}",
        run_name=f"{stage}/{variant}",
        tags={"stage": stage, "variant": variant, "git_commit": git_commit()},
        params=resolved if resolved is not None else {},
        uri=t.get("uri"),
        parent_run_id=parent_run_id,
        full_params=params.to_dict() if hasattr(params, "to_dict") else params,  # a stage's view: plain dicts
    )


class CurveLog:
    """Training curves for DVC plots, kept beside the MLflow step metrics: ``log(metrics, step)`` forwards to
    ``forward`` (e.g. :meth:`Tracker.log_metrics`) and appends one JSON line to ``<work_dir>/curves.jsonl``, which
    survives a killed run; :meth:`write_csv` publishes ``step`` + one column per metric, one row per logged step.

    The first record of a process drops the stored records from its step on: a resumed run keeps the curve up to its
    checkpoint, a run that started over (first record at the first logged step) keeps nothing of the old one."""

    def __init__(self, work_dir: str | os.PathLike, forward: Any = None):
        self.path = Path(work_dir) / "curves.jsonl"
        self.forward = forward
        self._started = False

    def _rows(self) -> list[dict[str, float]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.forward is not None:
            self.forward(metrics, step)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._started:
            kept = [r for r in self._rows() if r["step"] < step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            self._started = True
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def write_csv(self, out: str | os.PathLike) -> Path:
        import pandas as pd

        rows = self._rows()
        table = pd.DataFrame(rows, columns=None if rows else ["step"])
        if rows:
            table = table.drop_duplicates("step", keep="last").sort_values("step")
        table.to_csv(out, index=False)
        return Path(out)


def curves_path(metrics_path: str | os.PathLike, stage: str) -> Path:
    """Where a training stage publishes its curves CSV (the DVC plots of dvc.yaml): beside its metrics folder,
    ``results/metrics/train_tokenizer/larp.json`` -> ``results/metrics/curves/train_tokenizer/larp.csv``."""
    metrics_path = Path(metrics_path)
    return metrics_path.parent.parent / "curves" / stage / f"{metrics_path.stem}.csv"
