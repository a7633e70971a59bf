"""Workflow checks: lint is clean, every named target dry-runs at every scale, bad params stop before any job."""

import os

import pytest

from .conftest import run_tool, tool_env

TARGETS = ["reproduce_table1", "reproduce_scaling"]
SCALES = [[], ["--configfile", "tests/fixtures/params.tiny.yaml"]]


def test_lint_is_clean():
    proc = run_tool("snakemake", "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("scale", SCALES, ids=["embedded", "tiny"])
def test_dry_run(target, scale):
    proc = run_tool("snakemake", "-n", "-F", "--cores", "2", target, *scale)
    assert "train_tokenizer" in proc.stdout and "This was a dry-run" in proc.stdout


@pytest.mark.parametrize("target", ["reproduce_table1", "all"])
def test_parse_imports_no_torch(target, tmp_path):
    """Issue 16: parsing the workflow (params validation included) never imports torch, so a dry run needs no torch.
    A stand-in torch first on PYTHONPATH records any import (even one caught as an ImportError) and refuses it."""
    fake, marker = tmp_path / "fake" / "torch", tmp_path / "torch-imported.txt"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import pathlib, traceback\n"
        f"pathlib.Path({str(marker)!r}).write_text(''.join(traceback.format_stack()))\n"
        "raise ImportError('torch imported during the Snakemake parse')\n")
    env = tool_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(fake.parent), env.get("PYTHONPATH")) if p)
    proc = run_tool("snakemake", "-n", "-F", "--cores", "2", target, env=env, check=False)
    assert not marker.exists(), f"torch was imported during the parse:\n{marker.read_text()}"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "train_tokenizer" in proc.stdout and "This was a dry-run" in proc.stdout


def test_invalid_params_stop_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clips:\n  frames: 0\ntokenizer:\n  lr: 1e-4\n")
    proc = run_tool("snakemake", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "clips.frames = 0 is invalid" in text and "tokenizer.lr = '1e-4'" in text
    assert "rule make_synthetic" not in text


def test_cli_config_overrides_are_refused():
    proc = run_tool("snakemake", "-n", "--cores", "1", "--config", "tracking={experiment_prefix: other}", check=False)
    assert proc.returncode != 0 and "--configfile" in proc.stdout + proc.stderr


def test_paper_scale_dry_run(tmp_path):
    """The complete paper-scale file replaces params.yaml; with dataset roots present the whole DAG resolves."""
    (tmp_path / "ucf").mkdir()
    (tmp_path / "k600").mkdir()
    roots = tmp_path / "roots.yaml"
    roots.write_text(f"datasets:\n  ucf101: {{root: {tmp_path / 'ucf'}}}\n  k600: {{root: {tmp_path / 'k600'}}}\n")
    proc = run_tool("snakemake", "-n", "-F", "--cores", "2", "--configfile", "workflow/configs/paper.yaml", str(roots),
                    "--replace-workflow-config", "reproduce_table1")
    assert "extract_clips" in proc.stdout and "make_synthetic" not in proc.stdout
    assert "workflow/configs/paper.yaml" in proc.stdout and "--params params.yaml" not in proc.stdout


def test_bad_parameter_combinations_stop_snakemake_and_the_first_stage(tmp_path):
    """Issue 14 case 9: refused by `snakemake -n` and by the first stage's own validation, naming the keys."""
    import subprocess
    import sys

    from .conftest import ROOT, tool_env

    bad = tmp_path / "bad.yaml"
    bad.write_text("tokenizer:\n  model:\n    heads: 7\ntokens:\n  fp_context_frames: 17\n"
                   "detector:\n  kind: i3d\n  i3d_path: null\n")
    proc = run_tool("snakemake", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "rule make_synthetic" not in text
    needles = ("tokenizers.larp: width must be divisible by heads", "tokens.fp_context_frames",
               "detector.i3d_path is null")
    assert all(n in text for n in needles), text[-3000:]
    stage = subprocess.run([sys.executable, "workflow/scripts/make_synthetic.py", "--params", "params.yaml", str(bad),
                            "--out", str(tmp_path / "syn")], cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                           timeout=600)
    assert stage.returncode == 2 and "Traceback" not in stage.stderr
    assert all(n in stage.stderr for n in needles) and not (tmp_path / "syn").exists()
