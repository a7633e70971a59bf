"""Stages 2-3: LARP tokenizer training with its AR prior (and the patchwise baseline), token precomputation."""


rule train_tokenizer:
    input:
        clips=tokenizer_clip_stores,
    output:
        model=directory("results/tokenizer/{tok}"),
        metrics="results/metrics/train_tokenizer/{tok}.json",
        report=directory("reports/tokenizer/{tok}"),
    params:
        files=PARAMS,
        tokenizer=tokenizer_cfg,
        clips=section("clips"),
        run=section("run"),
    log:
        "logs/train_tokenizer/{tok}.log",
    benchmark:
        "logs/benchmarks/train_tokenizer/{tok}.tsv"
    threads: HALF
    resources:
        mem_mb=6000,
        runtime=600,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/train_tokenizer.py --params {params.files} --variant {wildcards.tok} --clips-dir results/clips "
        "--work work/train_tokenizer/{wildcards.tok} --out {output.model} --metrics {output.metrics} "
        "--report {output.report} --threads {threads} > {log} 2>&1"


rule encode_tokens:
    input:
        tokenizer="results/tokenizer/{tok}",
        clips=expand("results/clips/{dataset}", dataset=DATASETS),
    output:
        tokens=directory("results/tokens/{tok}"),
        metrics="results/metrics/encode_tokens/{tok}.json",
    params:
        files=PARAMS,
        tokens=section("tokens"),
        clips=section("clips"),
        datasets=section("datasets"),
    log:
        "logs/encode_tokens/{tok}.log",
    benchmark:
        "logs/benchmarks/encode_tokens/{tok}.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/encode_tokens.py --params {params.files} --tokenizer {input.tokenizer} --clips-dir results/clips "
        "--out {output.tokens} --metrics {output.metrics} --threads {threads} > {log} 2>&1"
