"""Stage import_official: the authors' released checkpoints as this project's weight files (larp.official).

An imported name is also declared under `tokenizers` / `generators` (workflow/configs/official.yaml), so the stages
downstream (encode_tokens, evaluate_tokenizer, sample_videos, evaluate_generator) score it like a trained variant;
the rule orders below make import_official, not a training rule, build its results/tokenizer|generator/<name>.
"""

import re

OFFICIAL = config.get("official") or {}
OFFICIAL_NAMES = sorted(OFFICIAL)
OFFICIAL_TOKENIZERS = [n for n in OFFICIAL_NAMES if OFFICIAL[n]["kind"] == "tokenizer"]
OFFICIAL_GENERATORS = [n for n in OFFICIAL_NAMES if OFFICIAL[n]["kind"] == "generator"]


ruleorder: import_official > train_tokenizer
ruleorder: import_official > train_generator


def official_entry(wildcards):
    entry = OFFICIAL[wildcards.official]
    if entry["kind"] != wildcards.kind:
        raise WorkflowError(f"official.{wildcards.official} is a {entry['kind']}, not a {wildcards.kind}")
    return json.dumps(entry, sort_keys=True)


rule import_official:
    output:
        model=directory("results/{kind}/{official}"),
        metrics="results/metrics/import_official/{kind}/{official}.json",
    wildcard_constraints:
        kind="tokenizer|generator",
        official="|".join(re.escape(n) for n in OFFICIAL_NAMES) or "(?!x)x",
    params:
        files=PARAMS,
        official=official_entry,
        tokens=section("tokens"),
    log:
        "logs/import_official/{kind}/{official}.log",
    benchmark:
        "logs/benchmarks/import_official/{kind}/{official}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/import_official.py --params {params.files} --name {wildcards.official:q} "
        "--out {output.model:q} --metrics {output.metrics:q} --cache-dir work/official --threads {threads} > {log:q} 2>&1"


def official_targets(wildcards):
    """Every output reproduce_official needs: each import, the imported tokenizer's tokens and rFVD, and each
    imported generator's samples and gFVD / frame-prediction FVD."""
    if not OFFICIAL:
        raise WorkflowError("reproduce_official: params declare no `official` checkpoints; add "
                            "--configfile workflow/configs/official.yaml")
    out = []
    for name in OFFICIAL_TOKENIZERS:
        out += [f"results/tokenizer/{name}", f"results/tokens/{name}", f"results/eval/tokenizer/{name}.json"]
    for name in OFFICIAL_GENERATORS:
        out += [f"results/generator/{name}", f"results/samples/{name}", f"results/eval/generator/{name}.json"]
    return out
