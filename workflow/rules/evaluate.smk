"""Stages 6-7: the FVD detector, rFVD / reconstruction scores, gFVD / frame-prediction scores.

train_detector runs for both detector kinds, so the DAG has one shape: kind classifier trains on the dataset's
train split, kind i3d only verifies detector.i3d_path (its checksum pins the content, so the file is not an input).
Real-data feature statistics are cached in work/fvd_cache (outside the declared outputs, like checkpoints).
"""

FVD_CACHE = "work/fvd_cache"


rule train_detector:
    input:
        clips="results/clips/{dataset}",
    output:
        detector=directory("results/detector/{dataset}"),
        metrics="results/metrics/train_detector/{dataset}.json",
    params:
        files=PARAMS,
        **reads("detector", "clips", "run"),
    log:
        "logs/train_detector/{dataset}.log",
    benchmark:
        "logs/benchmarks/train_detector/{dataset}.tsv"
    threads: HALF
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/train_detector.py --params {params.files} --reads {params.reads} --dataset {wildcards.dataset} --clips {input.clips} "
        "--out {output.detector} --metrics {output.metrics} --threads {threads} > {log} 2>&1"


rule evaluate_tokenizer:
    input:
        tokenizer="results/tokenizer/{tok}",
        clips=lambda wc: clip_store(TOKENIZER_CFG[wc.tok]["val_dataset"]),
        detector=lambda wc: f"results/detector/{TOKENIZER_CFG[wc.tok]['val_dataset']}",
    output:
        "results/eval/tokenizer/{tok}.json",
    params:
        files=PARAMS,
        **reads("evaluation", "detector", "clips", "tokenizer:variant", "run"),
        cache=FVD_CACHE,
    log:
        "logs/evaluate_tokenizer/{tok}.log",
    benchmark:
        "logs/benchmarks/evaluate_tokenizer/{tok}.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/evaluate_tokenizer.py --params {params.files} --reads {params.reads} --variant {wildcards.tok} --tokenizer {input.tokenizer} "
        "--clips {input.clips} --detector {input.detector} --cache-dir {params.cache} --out {output} "
        "--threads {threads} > {log} 2>&1"


rule evaluate_generator:
    input:
        samples="results/samples/{gen}",
        generator=generator_weights,
        clips=lambda wc: clip_store(GENERATOR_CFG[wc.gen]["dataset"]),
        detector=lambda wc: f"results/detector/{GENERATOR_CFG[wc.gen]['dataset']}",
    output:
        "results/eval/generator/{gen}.json",
    params:
        files=PARAMS,
        **reads("evaluation", "detector", "clips", "generator:variant", "run"),
        cache=FVD_CACHE,
    log:
        "logs/evaluate_generator/{gen}.log",
    benchmark:
        "logs/benchmarks/evaluate_generator/{gen}.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/evaluate_generator.py --params {params.files} --reads {params.reads} --variant {wildcards.gen} --samples {input.samples} "
        "--generator {input.generator} --clips {input.clips} --detector {input.detector} --cache-dir {params.cache} "
        "--out {output} --threads {threads} > {log} 2>&1"
