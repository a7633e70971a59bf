"""The SLURM profile (profiles/slurm): it loads, dry-runs at every scale, and its resources become the intended sbatch
requests and training launchers.

There is no SLURM here. A dry run with `executor: slurm` needs none (Snakemake swaps in its dry-run executor; it
still resolves every job's threads and resources from the profile), and the sbatch line of each planned job is
rendered with the plugin's own functions (`get_submit_command` + `set_gres_string`, the two halves the plugin joins
before calling sbatch; `get_best_partition` with profiles/slurm/partitions.yaml). Dry runs default to --cores 1
(snakemake/cli.py), which would cap threads; a SLURM run has no cap, so these pass --cores 256.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

from .conftest import ROOT, run_tool

PROFILE = "profiles/slurm"
SETTINGS = yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text())
NO_CAP = ["--cores", "256"]
TRAINING = {"train_tokenizer", "train_generator"}
OUR_RULE_FILES = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "workflow/rules").glob("*.smk"))


# ----------------------------------------------------------------------------------------------------
# Dry-run output -> planned jobs


class PlannedResources(SimpleNamespace):
    """A job's resolved resources with the `.get` the SLURM plugin calls."""

    def get(self, key, default=None):
        return getattr(self, key, default)


def planned_jobs(stdout: str) -> list[SimpleNamespace]:
    """Jobs of `snakemake -n -p` output: name, wildcards, threads, resources (ints where numeric), shell command."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", stdout):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        res = {}
        for item in fields.get("resources", "").split(", "):
            key, _, value = item.partition("=")
            res[key] = int(value) if value.isdigit() else value
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        jobs.append(SimpleNamespace(
            name=m.group(1), wildcards=fields.get("wildcards", ""), threads=int(fields.get("threads", 1)),
            resources=PlannedResources(**res), shell=shell.group(1) if shell and shell.group(1) != "None" else None,
        ))
    return jobs


def sbatch_line(job: SimpleNamespace, partitions) -> str:
    """The sbatch call the plugin would make for `job` (account left to the plugin's guess)."""
    partition = get_best_partition(partitions, job, logging.getLogger("slurm-partitions"))
    params = {"run_uuid": "larp", "slurm_logfile": f".snakemake/slurm_logs/rule_{job.name}/%j.log",
              "comment_str": f"rule_{job.name}", "account": "", "partition": f" -p {partition}" if partition else "",
              "workdir": str(ROOT)}
    return get_submit_command(job, params) + set_gres_string(job)


def dry_run(*args: str, cwd: Path = ROOT) -> list[SimpleNamespace]:
    proc = run_tool("snakemake", *args, "-n", "-p", "-F", *NO_CAP, "--workflow-profile", str(ROOT / PROFILE), cwd=cwd)
    assert "Using workflow specific profile" in proc.stderr and "This was a dry-run" in proc.stdout
    return planned_jobs(proc.stdout)


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[SimpleNamespace]:
    """Every job of the paper-scale DAG (Table 1, Table 2 and the rest of `all`), as a cluster checkout runs it:
    params.yaml holds the paper configuration (README "Running on a cluster": --replace-workflow-config does not
    reach SLURM jobs), dataset roots present."""
    work = tmp_path_factory.mktemp("paper")
    (work / "params.yaml").write_text((ROOT / "workflow/configs/paper.yaml").read_text())
    for root in ("data/ucf101", "data/k600"):
        (work / root).mkdir(parents=True)
    return dry_run("all", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), cwd=work)


@pytest.fixture(scope="module")
def partitions():
    return read_partition_file(ROOT / PROFILE / "partitions.yaml")


# ----------------------------------------------------------------------------------------------------
# The profile file


def test_profile_covers_every_rule_of_the_pipeline_and_names_only_real_rules():
    profile = SETTINGS
    ours = {r for f in OUR_RULE_FILES for r in re.findall(r"^rule (\w+):", (ROOT / f).read_text(), flags=re.M)}
    known = set(run_tool("snakemake", "--list-rules").stdout.split())
    assert profile["executor"] == "slurm"
    for key in ("set-threads", "set-resources"):
        assert ours <= set(profile[key]), f"{key} misses {ours - set(profile[key])}"
        assert set(profile[key]) <= known, f"{key} names rules that do not exist: {set(profile[key]) - known}"
    for rule, res in profile["set-resources"].items():
        assert {"mem_mb", "runtime"} <= set(res), rule
        if res.get("gpu", 0) > 0:  # threads = GPUs x cpus_per_gpu: the CPUs sbatch grants are the ones the job uses
            assert profile["set-threads"][rule] == res["gpu"] * res["cpus_per_gpu"], rule


def test_lint_is_clean_with_the_profile():
    proc = run_tool("snakemake", "--lint", "--workflow-profile", PROFILE, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_profile_given_as_global_profile_is_refused():
    """With --profile, profiles/default is loaded too and caps gpu at 1: the rules stop instead of training on 1."""
    proc = run_tool("snakemake", "reproduce_table1", "-n", "--profile", PROFILE, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "train_tokenizer:gpu=8" in text and "--workflow-profile profiles/slurm" in text


# ----------------------------------------------------------------------------------------------------
# Dry runs


def _check_launch(job: SimpleNamespace) -> None:
    gpus = job.resources.get("gpu", 0)
    if job.name in TRAINING and gpus > 1:
        assert job.shell.startswith(f"torchrun --standalone --nproc-per-node={gpus} workflow/scripts/"), job.shell
        assert f"--threads {job.threads // gpus} " in job.shell, job.shell
    elif job.shell is not None:
        assert job.shell.startswith("python workflow/scripts/"), job.shell


def test_embedded_scale_dry_run_with_the_profile():
    jobs = dry_run("reproduce_table1")
    trained = [j for j in jobs if j.name in TRAINING]
    assert trained and all(j.resources.gpu == 8 and j.threads == 64 for j in trained)
    for job in jobs:
        _check_launch(job)


def test_paper_scale_dry_run_as_documented_with_replace_workflow_config(tmp_path):
    """The form of README "Parameters" (the main process resolves the same DAG; see paper_jobs for SLURM jobs)."""
    roots = tmp_path / "roots.yaml"
    (tmp_path / "ucf").mkdir()
    (tmp_path / "k600").mkdir()
    roots.write_text(f"datasets:\n  ucf101: {{root: {tmp_path / 'ucf'}}}\n  k600: {{root: {tmp_path / 'k600'}}}\n")
    jobs = dry_run("reproduce_table1", "--configfile", "workflow/configs/paper.yaml", str(roots),
                   "--replace-workflow-config")
    assert {j.name for j in jobs} >= {"extract_clips", "train_tokenizer", "train_generator", "make_table1"}
    for job in jobs:
        _check_launch(job)


def test_paper_scale_jobs_launch_one_process_per_gpu(paper_jobs):
    names = {j.name for j in paper_jobs}
    assert {"extract_clips", "train_tokenizer", "encode_tokens", "train_generator", "sample_videos",
            "evaluate_generator", "make_table1", "make_table2"} <= names
    assert sum(j.name in TRAINING for j in paper_jobs) >= 2 * 4  # Table 1 and Table 2 runs
    for job in paper_jobs:
        _check_launch(job)
        assert "--params params.yaml " in (job.shell or "--params params.yaml ")


# ----------------------------------------------------------------------------------------------------
# What SLURM would be asked for


def test_paper_scale_sbatch_requests(paper_jobs, partitions):
    """Every job of a rule the profile sizes (target rules without a command are not submitted)."""
    submitted = [j for j in paper_jobs if j.shell is not None and j.name in SETTINGS["set-resources"]]
    for job in submitted:
        line = sbatch_line(job, partitions)
        assert f"-t {job.resources.runtime}" in line and f"--mem {job.resources.mem_mb}" in line, line
        gpus = job.resources.get("gpu", 0)
        if gpus:
            assert f"--gpus={gpus}" in line and f"--cpus-per-gpu={job.resources.cpus_per_gpu}" in line, line
            assert " -p gpu" in line, line
        else:
            assert "--gpus" not in line and f"--cpus-per-task={job.threads}" in line and " -p cpu" in line, line
    by_rule = {j.name: sbatch_line(j, partitions) for j in submitted}
    assert "--gpus=8" in by_rule["train_tokenizer"] and "--gpus=8" in by_rule["train_generator"]
    assert "--gpus=1" in by_rule["encode_tokens"] and "--gpus=1" in by_rule["evaluate_tokenizer"]
