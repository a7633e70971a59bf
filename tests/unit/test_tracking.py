"""The MLflow adapter: runs land in the configured store with tags and params; failures are loud; off is off."""

import mlflow
import pytest

from larp.tracking import Tracker, TrackingError, flatten, tracker_for


def test_run_is_logged_with_tags_params_and_metrics(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = {"tracking": {"enabled": True, "uri": None, "experiment_prefix": "t"}}
    with tracker_for(params, stage="train_tokenizer", variant="larp", study="unit",
                     resolved={"tokenizer": {"lr": 1e-4, "betas": [0.9, 0.95]}}) as tr:
        tr.log_metrics({"loss": 1.5, "fvd[clf]": 3.0, "skip": None}, step=2)
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(tr.run_id)
    assert run.data.tags["stage"] == "train_tokenizer" and run.data.tags["variant"] == "larp"
    assert "git_commit" in run.data.tags
    assert run.data.params["tokenizer.lr"] == "0.0001" and run.data.params["tokenizer.betas"] == "[0.9, 0.95]"
    assert run.data.metrics["loss"] == 1.5 and run.data.metrics["fvd_clf_"] == 3.0
    assert mlflow.get_experiment_by_name("t-unit").artifact_location.startswith("file://")


def test_disabled_tracker_is_a_noop(tmp_path):
    with Tracker(enabled=False, experiment="x", run_name="y", uri=f"sqlite:///{tmp_path}/none.db") as tr:
        tr.log_metrics({"a": 1.0})
    assert tr.run_id is None and not (tmp_path / "none.db").exists()


def test_unreachable_store_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    with pytest.raises(TrackingError, match="tracking.enabled: false"):
        with Tracker(enabled=True, experiment="x", run_name="y", uri=f"sqlite:///{tmp_path}/blocker/sub/m.db"):
            pass


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": "[1]", "e": "{}"}


def test_summary_configuration_is_logged_as_params_and_full_params_as_artifact(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = {"tracking": {"enabled": True, "uri": None, "experiment_prefix": "t"}, "run": {"seed": 0}}
    with tracker_for(params, stage="evaluate_tokenizer", variant="larp", study="unit", resolved={"steps": 10}) as tr:
        tr.log_metrics({"psnr": 20.0, "seed": 0, "frames": 16, "num_clips": 720, "larp/num_tokens": 64,
                        "real_stats_cached": True})
        tr.log_metrics({"steps": 7})  # already a param with another value: kept as a tag, the stage goes on
        tr.log_metrics({"frames": 3.0}, step=1)  # a curve stays a metric
    run = mlflow.MlflowClient(uri).get_run(tr.run_id)
    assert run.data.metrics == {"psnr": 20.0, "frames": 3.0}
    assert {k: run.data.params[k] for k in ("seed", "num_clips", "larp/num_tokens", "real_stats_cached")} == {
        "seed": "0", "num_clips": "720", "larp/num_tokens": "64", "real_stats_cached": "True"}
    assert run.data.params["steps"] == "10" and run.data.tags["result.steps"] == "7"
    assert "params.resolved.json" in {f.path for f in mlflow.MlflowClient(uri).list_artifacts(tr.run_id)}
