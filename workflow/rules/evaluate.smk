"""Stages 6-8: the FVD detector, rFVD / reconstruction scores, gFVD / frame-prediction scores, and Table 1.

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
        clips=lambda wc: f"results/clips/{TOKENIZER_CFG[wc.tok]['val_dataset']}",
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
        clips=lambda wc: f"results/clips/{GENERATOR_CFG[wc.gen]['dataset']}",
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


rule make_table1:
    input:
        tokenizers=expand("results/eval/tokenizer/{tok}.json", tok=TOKENIZERS),
        generators=expand("results/eval/generator/{gen}.json", gen=GENERATORS),
    output:
        md="reports/table1.md",
        html=report("reports/table1.html", caption="../report/table1.rst", category="Table 1"),
        csv=report("reports/table1.csv", caption="../report/table1.rst", category="Table 1"),
    params:
        files=PARAMS,
        **reads("tokenizers", "generators", "official"),
    log:
        "logs/make_table1/table1.log",
    benchmark:
        "logs/benchmarks/make_table1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/make_table1.py --params {params.files} --reads {params.reads} --tokenizer-evals {input.tokenizers} "
        "--generator-evals {input.generators} --md {output.md} --html {output.html} --csv {output.csv} "
        "--threads {threads} > {log} 2>&1"


rule make_table2:
    input:
        tokenizers=expand("results/eval/tokenizer/{tok}.json", tok=TABLE2_TRAINED),
        generators=expand("results/eval/generator/{gen}.json", gen=TABLE2_TRAINED + TABLE2_SAMPLED),
    output:
        md="reports/table2.md",
        html=report("reports/table2.html", caption="../report/table2.rst", category="Table 2"),
        csv=report("reports/table2.csv", caption="../report/table2.rst", category="Table 2"),
        runs=report("reports/table2_runs.csv", caption="../report/table2.rst", category="Table 2"),
    params:
        files=PARAMS,
        **reads("table2"),
    log:
        "logs/make_table2/table2.log",
    benchmark:
        "logs/benchmarks/make_table2.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/make_table2.py --params {params.files} --reads {params.reads} --tokenizer-evals {input.tokenizers} "
        "--generator-evals {input.generators} --md {output.md} --html {output.html} --csv {output.csv} "
        "--runs-csv {output.runs} --threads {threads} > {log} 2>&1"
