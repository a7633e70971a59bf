"""Values from params reach the stage commands quoted (issue 14 case 2): a dataset root with a space is one
argument, and one holding ``$(...)`` runs nothing, in the Snakemake shell line and in dvc.yaml's cmd."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from larp.config import load_params, validate_params
from larp.errors import ParamsError

from .conftest import ROOT, run_tool

HOSTILE = "my videos $(touch pwned) `touch pwned2`; touch pwned3"


def _echo_args(cmd: str, cwd: Path) -> list[str]:
    """Run the stage command through bash with the script replaced by printf: the arguments the script would get."""
    line = cmd.removeprefix("Shell command: ").split(" > ")[0]
    assert line.startswith("python workflow/scripts/extract_clips.py "), line
    line = "printf '%s\\n' " + line[len("python workflow/scripts/extract_clips.py "):]
    out = subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.splitlines()


def _argument(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _entry(root: Path) -> dict:
    return {"kind": "ucf101", "root": str(root), "split": 1, "annotations": None, "train_split": "train",
            "test_split": "val"}


def test_snakemake_passes_a_hostile_root_as_one_argument_and_runs_nothing(tmp_path):
    root = tmp_path / HOSTILE
    root.mkdir()
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"spaced": _entry(root)}}))
    proc = run_tool("snakemake", "results/clips/spaced", "-n", "-p", "-F", "--cores", "1", "--configfile", str(extra))
    cmd = next(ln for ln in proc.stdout.splitlines() if "extract_clips.py" in ln and "--input" in ln)
    argv = _echo_args(cmd.strip(), tmp_path)
    assert _argument(argv, "--input") == str(root)
    assert not list(tmp_path.glob("pwned*")) and not list(ROOT.glob("pwned*"))


def test_dvc_passes_a_hostile_root_as_one_argument_and_runs_nothing(tmp_path):
    """The dvc.yaml generated for params with that dataset (workflow/tools/dag.py, from the Snakemake jobs) carries
    the root as one quoted argument too."""
    import importlib.util

    from dvc.repo import Repo

    spec = importlib.util.spec_from_file_location("dag", ROOT / "workflow/tools/dag.py")
    dag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag)
    repo = tmp_path / "repo"
    repo.mkdir()
    root = tmp_path / HOSTILE
    root.mkdir()
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"spaced": _entry(root)}}))
    (repo / "params.yaml").write_text(yaml.safe_dump(load_params([ROOT / "params.yaml", extra]), sort_keys=False))
    (repo / "dvc.yaml").write_text(dag.render_dvc("--configfile", str(extra)))
    run_tool("dvc", "init", "--no-scm", "-q", cwd=repo)
    stages = {s.addressing.split(":")[-1]: s for s in Repo(str(repo)).index.stages}
    stage = stages.get("extract_clips@spaced")
    assert stage is not None, sorted(stages)
    argv = _echo_args(stage.cmd, tmp_path)
    assert _argument(argv, "--input") == str(root)
    assert not list(tmp_path.glob("pwned*"))


def test_a_root_that_cannot_be_quoted_is_refused_naming_the_key():
    params = load_params([ROOT / "params.yaml"])
    for bad in ("data/it's", "data/a\nb", "data/a, b", "data/${x}"):
        params["datasets"]["synthetic"]["root"] = bad
        with pytest.raises(ParamsError, match=r"datasets\.synthetic\.root = .* single quote"):
            validate_params(params)
