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


def test_snakemake_inputs_are_dvc_deps(both):
    """Every Snakemake input is a DVC dependency (or inside one: DVC may depend on a parent folder)."""
    smk, dvc = both
    missing = {}
    for k, job in smk.items():
        deps = dvc.get(k, {}).get("deps", set())
        lost = [i for i in job["inputs"] if not any(i == d or i.startswith(d.rstrip("/") + "/") for d in deps)]
        if lost:
            missing[k] = lost
    assert not missing, missing


def test_every_stage_script_is_a_dvc_dep(both):
    _, dvc = both
    for name, st in dvc.items():
        script = next(a for a in st["cmd"] if a.endswith(".py"))
        assert script in st["deps"], f"{name}: {script} must be listed as a dependency"


def test_readme_dag_is_current():
    text = (ROOT / "README.md").read_text()
    assert dag.readme_block() in text, "README DAG is stale: run `python workflow/tools/dag.py --readme`"
