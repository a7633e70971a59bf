"""Incremental re-runs (Snakemake): nothing changed -> nothing to do; one variant's parameter -> only its branch.

Runs the whole tiny pipeline once in a copy of the repository (about 2 minutes on 2 cores)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from .conftest import ROOT, run_tool


def _jobs(dry_run_stdout: str) -> set[str]:
    """Jobs a dry run would execute, as rule or rule@wildcards."""
    jobs = set()
    for block in re.split(r"\n(?=rule \w+:)", dry_run_stdout):
        m = re.match(r"rule (\w+):", block)
        if m:
            wild = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
            jobs.add(m.group(1) + ("@" + wild.group(1).split("=", 1)[1] if wild else ""))
    return jobs


@pytest.mark.slow
def test_rerun_does_nothing_and_a_variant_change_reruns_only_its_branch(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for rel in ("src", "workflow", "tests", "params.yaml", "Snakefile", "dvc.yaml", "profiles"):  # the working tree
        src, dst = ROOT / rel, repo / rel
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    tiny = ["--configfile", "tests/fixtures/params.tiny.yaml"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_tool("snakemake", "reproduce_table1", "--cores", "2", *tiny, cwd=repo)
    assert (repo / "reports/table1.md").is_file()

    again = run_tool("snakemake", "reproduce_table1", "-n", "--cores", "2", *tiny, cwd=repo)
    assert "Nothing to be done" in again.stdout, again.stdout[-2000:]

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["generators"]["class-patchwise"]["sampling.temperature"] = 0.9
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = _jobs(run_tool("snakemake", "reproduce_table1", "-n", "--cores", "2", *tiny, cwd=repo).stdout)
    assert changed == {"sample_videos@class-patchwise", "evaluate_generator@class-patchwise", "make_table1",
                       "reproduce_table1"}, changed
