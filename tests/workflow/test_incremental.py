"""Incremental re-runs, Snakemake and DVC: nothing changed -> nothing to do; one variant's parameter -> only its branch.

Each test runs the whole tiny Table 1 pipeline once in a copy of the repository. Measured on 2 cores shared with
other jobs (load average 3-6): Snakemake 2.5 min (two jobs at a time), DVC 3-4.5 min (22 stages one at a time)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from larp.config import load_params

from .conftest import ROOT, run_tool

TINY = "tests/fixtures/params.tiny.yaml"


def _clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git clone of the repository with the working tree's pipeline files, tracking into a temporary store and
    importing the clone's own library (not the checkout the virtual environment was installed from)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for rel in ("src", "workflow", "tests", "params.yaml", "Snakefile", "dvc.yaml", "profiles"):  # the working tree
        src, dst = ROOT / rel, repo / rel
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PYTHONPATH", str(repo / "src"))
    return repo


def _edit_params(repo: Path, edit) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


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
    repo = _clone(tmp_path, monkeypatch)
    tiny = ["--configfile", TINY]
    run_tool("snakemake", "reproduce_table1", "--cores", "2", *tiny, cwd=repo)
    assert (repo / "reports/table1.md").is_file()

    # the HTML report is a results page: the tables, figures and videos are its items (issue 17)
    run_tool("snakemake", "--report", str(tmp_path / "report.html"), "reproduce_table1", "--cores", "1", *tiny,
             cwd=repo)
    page = (tmp_path / "report.html").read_text()
    for item in ("reports/table1.html", "reports/table1.csv", "reconstructions.png", "reconstructions.mp4",
                 "contact_sheet.png", "samples.mp4", "Tokenizer reconstructions"):
        assert item in page, f"{item} is not in the snakemake --report page"

    again = run_tool("snakemake", "reproduce_table1", "-n", "--cores", "2", *tiny, cwd=repo)
    assert "Nothing to be done" in again.stdout, again.stdout[-2000:]

    _edit_params(repo, lambda p: p["generators"]["class-patchwise"].update({"sampling.temperature": 0.9}))
    changed = _jobs(run_tool("snakemake", "reproduce_table1", "-n", "--cores", "2", *tiny, cwd=repo).stdout)
    assert changed == {"sample_videos@class-patchwise", "evaluate_generator@class-patchwise", "make_table1",
                       "reproduce_table1"}, changed


# ---------------------------------------------------------------------------------------------------------------
# DVC: `dvc repro make_table1` builds Table 1 only (22 stages; `dvc repro` alone would also run the Table 2 sweep).


def _dvc_changed(repo: Path) -> set[str]:
    """Stages of Table 1's pipeline whose own dependencies or parameters changed (`dvc status` does not look past
    an upstream stage that has not re-run yet)."""
    out = run_tool("dvc", "status", "--with-deps", "--json", "make_table1", cwd=repo).stdout
    return set(json.loads(out))


def _dvc_downstream(repo: Path, stages: set[str]) -> set[str]:
    """``stages`` and every stage of Table 1's pipeline that depends on them, directly or not: all that
    `dvc repro make_table1` can run when exactly ``stages`` changed. With no ``stages``: the whole pipeline."""
    import networkx as nx
    from dvc.repo import Repo
    from dvc.repo.reproduce import plan_repro

    with Repo(str(repo)) as dvc_repo:
        graph = dvc_repo.index.graph  # edges point from a stage to the stages it depends on
        by_name = {s.name: s for s in graph}
        table1 = {s.name for s in plan_repro(graph, [by_name["make_table1"]])}
        if not stages:
            return table1
        down = set(stages)
        for name in stages:
            down |= {s.name for s in nx.ancestors(graph, by_name[name])}
    return down & table1


def _ran(stdout: str) -> list[str]:
    return re.findall(r"^Running stage '([^']+)'", stdout, flags=re.M)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:_NoneStep.value will soon raise:DeprecationWarning")  # dvc 3.67's own trie use
def test_dvc_rerun_does_nothing_and_a_variant_change_reruns_only_its_branch(tmp_path, monkeypatch):
    repo = _clone(tmp_path, monkeypatch)
    # DVC reads params.yaml only: make it the tiny configuration (the merge Snakemake does with --configfile)
    merged = load_params([repo / "params.yaml", repo / TINY])
    (repo / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))

    table1 = _dvc_downstream(repo, set())
    assert len(table1) == 22 and not any("table2" in s for s in table1), sorted(table1)
    first = run_tool("dvc", "repro", "make_table1", cwd=repo)
    assert sorted(_ran(first.stdout)) == sorted(table1), first.stdout[-3000:]
    assert (repo / "reports/table1.md").is_file()

    assert _dvc_changed(repo) == set()
    again = run_tool("dvc", "repro", "make_table1", cwd=repo)
    assert _ran(again.stdout) == [] and "make_table1' didn't change" in again.stdout, again.stdout

    # one generator variant's sampling parameter: that variant only. DVC tracks generators.<variant> as one key
    # (a dotted `sampling.*` override cannot be told apart from a training one), so its generator retrains too;
    # Snakemake resamples without retraining (test above).
    _edit_params(repo, lambda p: p["generators"]["class-patchwise"].update({"sampling.temperature": 0.9}))
    generator_branch = {"train_generator@class-patchwise", "sample_videos@class-patchwise",
                        "evaluate_generator@class-patchwise", "make_table1"}
    assert _dvc_changed(repo) == generator_branch
    assert _dvc_downstream(repo, generator_branch) == generator_branch

    # one tokenizer variant's parameter: that tokenizer, its tokens, its evaluation, and every generator on it
    _edit_params(repo, lambda p: p["tokenizers"]["patchwise"].update({"seed": 1}))
    gens = sorted(g for g, v in merged["generators"].items() if v.get("tokenizer") == "patchwise")
    assert gens == ["class-patchwise", "fp-patchwise"], gens
    tokenizer_branch = {"train_tokenizer@patchwise", "encode_tokens@patchwise", "evaluate_tokenizer@patchwise",
                        "make_table1"} | {f"{stage}@{g}" for g in gens
                                          for stage in ("train_generator", "sample_videos", "evaluate_generator")}
    changed = _dvc_changed(repo)
    assert changed == {"train_tokenizer@patchwise", "evaluate_tokenizer@patchwise"} | generator_branch, changed
    assert _dvc_downstream(repo, changed) == tokenizer_branch
