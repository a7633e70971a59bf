"""Validation, the parameter files handed to every script, and variant helpers.

Only values routed through a rule's ``params:`` are provenance-tracked by Snakemake (docs/tooling-notes.md §1),
so every rule declares the parameter sections its stage reads there with ``reads(...)``; the scripts read the same
files via ``--params`` and see only the declared sections (``--reads``).
"""

import json
import os
import shlex
import shutil

# Only torch-free modules: parsing the workflow (snakemake -n included) never imports torch
# (tests/workflow/test_snakemake.py::test_parse_imports_no_torch).
from larp.config import load_params, validate_params, variant_section
from larp.errors import ParamsError
from larp.official_params import official_entry_json
from larp.reads import tracked_json
from larp.sweeps import all_sampling_runs, all_trained_runs, generator_source, ngram_runs, sampling_runs, trained_runs

# The files the scripts merge, in Snakemake's order: params.yaml, then every --configfile; with
# --replace-workflow-config (a complete file such as workflow/configs/paper.yaml) only the --configfile ones.
PARAM_FILES = [str(p) for p in workflow.overwrite_configfiles]
if not workflow.config_settings.replace_workflow_config:
    PARAM_FILES = ["params.yaml"] + PARAM_FILES
# each path shell-quoted (unchanged when it needs no quoting, so Snakemake's params provenance stays the same)
PARAMS = " ".join(shlex.quote(p) for p in PARAM_FILES)

try:
    validate_params(config, source=" + ".join(PARAM_FILES))
    if load_params(PARAM_FILES) != config:
        raise ParamsError(
            "--config KEY=VALUE overrides are not passed to the stage scripts; put them in a YAML file and use "
            "--configfile FILE (merged on top of params.yaml), or edit params.yaml"
        )
except ParamsError as exc:
    raise WorkflowError(str(exc)) from None

# GPUs one training job takes: rules declare resources gpu=GPU, and the profile caps the sum at the GPUs present,
# so on a GPU machine jobs that need the GPU queue for it, while on CPU they run side by side.
GPU = 0 if config["run"]["device"] == "cpu" or (config["run"]["device"] == "auto" and not shutil.which("nvidia-smi")) else 1

# Threads: data stages use every core; training stages half, so two variants train side by side (cluster
# profiles override per rule with set-threads). Without --cores (e.g. --rulegraph) fall back to the CPU count.
# resource_settings.cores is the --cores value (an int; None when not given), the one workflow.cores reports.
CORES = workflow.resource_settings.cores or os.cpu_count() or 1
HALF = max(1, CORES // 2)

DATASETS = sorted(config["datasets"])
TOKENIZERS = sorted(config["tokenizers"])  # declared variants (Table 1)
# Sweep runs <sweep>-<entry>-s<seed> (larp.sweeps: table2-<variant>-s<seed>, scaling-<point>-s<seed>): trained ones
# go through every stage; sampling-only ones re-sample the reference run's generator. They resolve like declared
# variants, so the same rules build them.
TABLE2_TRAINED = trained_runs(config)
TABLE2_SAMPLED = sampling_runs(config)
SCALING_TRAINED = trained_runs(config, "scaling")
SWEEP_TRAINED = all_trained_runs(config)
SWEEP_SAMPLED = all_sampling_runs(config)
ALL_TOKENIZERS = TOKENIZERS + SWEEP_TRAINED
GENERATORS = sorted(config["generators"])  # declared variants (Table 1)
ALL_GENERATORS = GENERATORS + SWEEP_TRAINED + SWEEP_SAMPLED
# each variant's resolved section: its datasets, tokenizer and mode name the exact paths a job reads (the rules pass
# those paths, so the library resolves no variant to find its inputs)
TOKENIZER_CFG = {t: variant_section(config, "tokenizer", "tokenizers", t) for t in ALL_TOKENIZERS}
GENERATOR_CFG = {g: variant_section(config, "generator", "generators", g) for g in ALL_GENERATORS}
SYNTHETIC_ROOT = "data/synthetic"
for _name, _ds in config["datasets"].items():
    if _ds["kind"] == "synthetic" and _ds["root"] != SYNTHETIC_ROOT:
        raise WorkflowError(f"datasets.{_name}.root must be {SYNTHETIC_ROOT} for kind synthetic (make_synthetic writes there)")


wildcard_constraints:
    dataset="|".join(DATASETS),
    tok="|".join(ALL_TOKENIZERS),


def resource_value(res):
    """A value of workflow.resource_settings (--resources, --set-resources): a snakemake.resources.Resource from the
    command line, a plain value from the Python API; None when not set."""
    return getattr(res, "value", res)


def reads(*declared, **when):
    """The parameter sections a rule's stage reads (larp.reads), declared once: ``params: **reads(...)`` gives the
    script's ``--reads`` list (wildcards filled in, e.g. ``datasets.{dataset}``) and their values, which Snakemake's
    params trigger tracks; workflow/tools/dag.py writes the same sections into dvc.yaml. A stage reading a section
    it does not declare stops with an error naming it. The variant of ``tokenizer:variant`` / ``generator:variant``
    is the job's {tok} or {gen}. ``when`` adds sections by a wildcard's value, for a rule whose jobs read different
    sections: ``kind={"generator": ["generators", "generator"]}``. Only literals here: tests/stages/scripts.py reads
    the declaration back from this file."""

    def names(wildcards):
        extra = [n for w, by_value in when.items() for n in by_value.get(wildcards[w], ())]
        return [d.format(**wildcards) for d in declared] + extra

    def tracked(wildcards):
        return tracked_json(config, names(wildcards), wildcards.get("tok") or wildcards.get("gen"))

    return {"reads": lambda wildcards: " ".join(shlex.quote(n) for n in names(wildcards)), "tracked": tracked}


def clip_store(dataset):
    """extract_clips' output for ``dataset``: the exact path every stage reading that dataset's clips is given."""
    return f"results/clips/{dataset}"


def dataset_root(wildcards):
    return config["datasets"][wildcards.dataset]["root"]


def generator_weights(wildcards):
    """The trained generator a sampling run uses: its own, or the reference run's for a sweep's sampling variant."""
    return f"results/generator/{generator_source(config, wildcards.gen)}"


def official_kind_checked(wildcards):
    """import_official's input: no file; refuses, while the DAG is built, a job whose {kind} is not the entry's kind (a generator entry
    asked for as results/tokenizer/<name>)."""
    official_entry_json(config, wildcards.official, wildcards.kind)
    return []
