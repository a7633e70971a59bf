"""Snakemake and DVC declare the same stages with the same commands and outputs; the README diagram is current."""

import importlib.util

import pytest

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


# DVC cannot expand a list of runs into deps, so these depend on the runs' parent folder (dvc.yaml)
PARENT_DEPS = {"make_table2": {"results/eval"}, "make_scaling": {"results/eval"},
               "analysis_ngrams": {"results/generator"}}


def test_dvc_data_deps_equal_snakemake_inputs(both):
    """Each DVC stage reads exactly the data its Snakemake rule declares (no parent folder shared by variants), so
    retraining one variant leaves the other variants' DVC stages up to date."""
    smk, dvc = both
    diff = {k: (sorted(job["inputs"]), sorted(dvc[k]["data_deps"])) for k, job in smk.items()
            if k in dvc and k not in PARENT_DEPS and job["inputs"] != dvc[k]["data_deps"]}
    assert not diff, diff


def test_parent_folder_deps_cover_snakemake_inputs(both):
    smk, dvc = both
    for name, parents in PARENT_DEPS.items():
        assert dvc[name]["data_deps"] == parents, dvc[name]["data_deps"]
        lost = [i for i in smk[name]["inputs"] if not any(i.startswith(p + "/") for p in parents)]
        assert smk[name]["inputs"] and not lost, lost


def test_clip_store_deps_expand_per_dataset():
    deps = {"workflow/scripts/x.py", "src/larp/data", "results/clips", "results/tokenizer/larp"}
    assert dag.data_deps(deps, ["k600", "ucf101"]) == {"results/clips/k600", "results/clips/ucf101",
                                                       "results/tokenizer/larp"}


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
