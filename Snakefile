"""LARP pipeline — Snakemake entry point (a table of contents; the rules live in workflow/rules/*.smk).

    snakemake --cores all reproduce_table1                      # embedded default (params.yaml)
    snakemake --cores all reproduce_table2                      # the Table 2 ablations, every seed
    snakemake --cores all reproduce_scaling                     # scaling figures: tokens +- prior, tokenizer size
    snakemake --cores all analyses                              # App. B analyses + reports/claims.md
    snakemake reproduce_official --cores all --configfile workflow/configs/official.yaml  # released weights, scored
    snakemake --cores all --configfile workflow/configs/paper.yaml reproduce_table1   # paper scale
The rules are the one declaration of the DAG: dvc.yaml is generated from them (python workflow/tools/dag.py
--write-dvc), and tests/workflow/test_dag_consistency.py fails while it is stale.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/generator.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/official.smk"


rule reproduce_table1:
    """Table 1: trains the tokenizers and generators, scores them, writes reports/table1.{md,csv}."""
    default_target: True
    input:
        "reports/table1.md",
        "reports/table1.csv",


rule reproduce_table2:
    """Table 2: every ablation variant x seed of params.yaml `table2`, scored, as reports/table2.{md,csv}."""
    input:
        "reports/table2.md",
        "reports/table2.csv",


rule reproduce_scaling:
    """Fig. 1b / 3a / 3b: every point x seed of params.yaml `scaling`, scored, as reports/scaling/ (tables, PNGs)."""
    input:
        "reports/scaling",


rule reproduce_official:
    """The authors' released checkpoints (params `official`) through our stages: imports, tokens, samples, rFVD,
    gFVD and frame-prediction FVD (snakemake reproduce_official --configfile workflow/configs/official.yaml)."""
    input:
        lambda wc: official_targets(config),


rule analyses:
    """The latent-space analyses (App. B.2-B.4) and reports/claims.md (needs the Table 2 sweep)."""
    input:
        "reports/analysis/ngrams",
        "reports/analysis/importance",
        "reports/analysis/redundancy",
        "reports/claims.md",


rule all:
    """Every report."""
    input:
        rules.reproduce_table1.input,
        rules.reproduce_table2.input,
        rules.reproduce_scaling.input,
        rules.analyses.input,
