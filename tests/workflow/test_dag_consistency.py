"""Snakemake and DVC declare the same stages with the same commands and outputs; the README diagram is current."""

import importlib.util

import pytest
import yaml

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("dag", ROOT / "workflow/tools/dag.py")
dag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dag)


@pytest.fixture(scope="module")
def both():
    return dag.snakemake_jobs(), dag.dvc_stages()


def test_same_stages(both):
    smk, dvc = both
    assert set(smk) == set(dvc), f"only Snakemake: {set(smk) - set(dvc)}; only DVC: {set(dvc) - set(smk)}"


def test_same_commands(both):
    smk, dvc = both
    diff = {k: (smk[k]["cmd"], dvc[k]["cmd"]) for k in smk if k in dvc and smk[k]["cmd"] != dvc[k]["cmd"]}
    assert not diff, diff


def test_same_outputs(both):
    smk, dvc = both
    diff = {k: (smk[k]["outputs"], dvc[k]["outputs"]) for k in smk if k in dvc and smk[k]["outputs"] != dvc[k]["outputs"]}
    assert not diff, diff


def test_dvc_data_deps_equal_snakemake_inputs(both):
    """Each DVC stage reads exactly the data its Snakemake rule declares (no parent folder shared by variants), so
    retraining one variant leaves the other variants' DVC stages up to date, and building one sweep's table does
    not build the other's evaluations."""
    smk, dvc = both
    diff = {k: (sorted(job["inputs"]), sorted(dvc[k]["data_deps"])) for k, job in smk.items()
            if k in dvc and job["inputs"] != dvc[k]["data_deps"]}
    assert not diff, diff


def test_committed_dvc_yaml_is_generated_from_the_snakemake_rules():
    """dvc.yaml is written by workflow/tools/dag.py from the Snakemake jobs: a rule, variant, sweep point or
    declared parameter section changed without regenerating (or a hand edit) fails here."""
    current = (ROOT / "dvc.yaml").read_text()
    assert dag.render_dvc() == current, "dvc.yaml is stale: run `python workflow/tools/dag.py --write-dvc`"


def test_dvc_params_are_the_declared_sections(both):
    """Every DVC stage tracks the key paths of the sections its rule declares (larp.reads.dvc_keys of its --reads),
    and its command passes the same declaration to the script."""
    from larp.config import load_params
    from larp.reads import dvc_keys

    params = load_params([ROOT / "params.yaml"])
    _, dvc = both
    for name, st in dvc.items():
        reads = dag._flag_values(st["cmd"], "--reads")
        assert reads, f"{name}: its command passes no --reads"
        variant = (dag._flag_values(st["cmd"], "--variant") or [None])[0]
        assert st["params"] == set(dvc_keys(params, reads, variant)), name


def test_code_deps_follow_the_imports():
    deps = dag.code_deps("workflow/scripts/train_tokenizer.py")
    assert deps[0] == "workflow/scripts/train_tokenizer.py"
    assert {"src/larp/stages/tokenizer.py", "src/larp/tokenizer/model.py", "src/larp/cli.py", "src/larp/reads.py",
            "src/larp/errors.py", "src/larp/schemas"} <= set(deps)
    assert "src/larp/analysis/table2.py" not in deps  # a module the stage never imports


def test_every_stage_script_is_a_dvc_dep(both):
    _, dvc = both
    for name, st in dvc.items():
        script = next(a for a in st["cmd"] if a.endswith(".py"))
        assert script in st["deps"], f"{name}: {script} must be listed as a dependency"


def test_readme_dag_is_current():
    text = (ROOT / "README.md").read_text()
    assert dag.readme_block() in text, "README DAG is stale: run `python workflow/tools/dag.py --readme`"


def test_workflow_subprocess_limits_are_safety_limits_not_speed_requirements():
    """Issue 14 case 12: a 300-second limit failed the tiny `dvc repro make_table1` on a loaded 2-core machine."""
    from .conftest import TOOL_TIMEOUT_S

    assert TOOL_TIMEOUT_S >= 3600 and dag.TOOL_TIMEOUT_S >= 3600


def test_dvc_names_map_back_to_snakemake_job_names():
    assert dag._snakemake_name("train_tokenizer@larp") == "train_tokenizer@larp"
    assert dag._snakemake_name("train_tokenizer_table2@no-prior-1") == "train_tokenizer@table2-no-prior-s1"
    assert dag._snakemake_name("sample_videos_table2s@no-cfg-0") == "sample_videos@table2-no-cfg-s0"
    # a rule's second foreach stage (its jobs' lists have another length) names the same jobs
    assert dag._snakemake_name("train_tokenizer_2@larp") == "train_tokenizer@larp"
    assert dag._snakemake_name("train_tokenizer_table2_2@no-prior-1") == "train_tokenizer@table2-no-prior-s1"
    assert dag._snakemake_name("make_table1") == "make_table1"


def test_foreach_items_name_their_varying_inputs():
    """A varying input is an item field named after its kind of folder, and the command writes it with that field."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    sample = stages["sample_videos"]
    assert "--tokenizer ${item.tokenizer}" in sample["do"]["cmd"] and "${item.tokenizer}" in sample["do"]["deps"]
    assert sample["foreach"]["class-patchwise"]["tokenizer"] == "results/tokenizer/patchwise"


def test_dry_run_listing_keeps_jobs_with_a_command_only():
    text = """Building DAG of jobs...
rule train_tokenizer:
    input: results/clips/a, results/clips/b
    output: results/tokenizer/larp
    wildcards: tok=larp
Shell command: python workflow/scripts/train_tokenizer.py --variant larp > logs/train_tokenizer/larp.log 2>&1

localrule reproduce_official:
    input: results/tokenizer/x
    jobid: 0
Shell command: None

checkpoint split:
    input: data/x
    output: results/split
Shell command: python s.py > 'logs/a b.log' 2>&1
"""
    jobs = dag.parse_dry_run(text)
    assert [j["rule"] for j in jobs] == ["train_tokenizer", "split"]
    assert jobs[0]["inputs"] == ["results/clips/a", "results/clips/b"] and jobs[0]["wildcards"] == {"tok": "larp"}
    assert dag.normalise_cmd(jobs[1]["cmd"]) == ("python", "s.py")
