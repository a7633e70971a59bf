"""Stage import_official: the authors' released checkpoints as this project's weight files (larp.official).

An imported name is also declared under `tokenizers` / `generators` (workflow/configs/official.yaml), so the stages
downstream (encode_tokens, evaluate_tokenizer, sample_videos, evaluate_generator) score it like a trained variant;
the rule orders below make import_official, not a training rule, build its results/tokenizer|generator/<name>.
"""

import re

from larp.official_params import official_targets  # torch-free (larp.official imports torch)


OFFICIAL_NAMES = sorted(config.get("official") or {})


ruleorder: import_official > train_tokenizer
ruleorder: import_official > train_generator


rule import_official:
    input:
        official_kind_checked,
    output:
        model=directory("results/{kind}/{official}"),
        metrics="results/metrics/import_official/{kind}/{official}.json",
    wildcard_constraints:
        kind="tokenizer|generator",
        official="|".join(re.escape(n) for n in OFFICIAL_NAMES) or "(?!x)x",
    params:
        files=PARAMS,
        # a generator import also records the token layout (tokens) and checks itself against its declared variant
        **reads("official.{official}", kind={"generator": ["tokens", "generators", "generator"]}),
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
        "python workflow/scripts/import_official.py --params {params.files} --reads {params.reads} --name {wildcards.official:q} "
        "--out {output.model:q} --metrics {output.metrics:q} --cache-dir work/official --threads {threads} > {log:q} 2>&1"
