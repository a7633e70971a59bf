"""LARP pipeline — Snakemake entry point (a table of contents; the rules live in workflow/rules/*.smk).

    snakemake --cores all reproduce_table1                      # embedded default (params.yaml)
    snakemake --cores all --configfile workflow/configs/paper.yaml reproduce_table1   # paper scale
dvc.yaml declares the same stages with the same commands (tests/workflow/test_dag_consistency.py proves it).
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/generator.smk"


rule reproduce_table1:
    """Everything Table 1 needs (grows with the pipeline: data, tokenizers, tokens so far)."""
    default_target: True
    input:
        expand("results/clips/{dataset}", dataset=DATASETS),
        expand("results/tokenizer/{tok}", tok=TOKENIZERS),
        expand("results/tokens/{tok}", tok=TOKENIZERS),
        expand("results/samples/{gen}", gen=GENERATORS),
