"""Stage 1: the embedded synthetic video set and clip extraction (UCF-101, Kinetics-600, synthetic)."""


rule make_synthetic:
    output:
        directory("data/synthetic"),
    params:
        files=PARAMS,
        **reads("synthetic"),
    log:
        "logs/make_synthetic/synthetic.log",
    benchmark:
        "logs/benchmarks/make_synthetic.tsv"
    threads: CORES
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/make_synthetic.py --params {params.files} --reads {params.reads} --out {output} --threads {threads} > {log} 2>&1"


rule extract_clips:
    input:
        root=dataset_root,
    output:
        store=directory("results/clips/{dataset}"),
        metrics="results/metrics/extract_clips/{dataset}.json",
    params:
        files=PARAMS,
        **reads("clips", "datasets.{dataset}"),
    log:
        "logs/extract_clips/{dataset}.log",
    benchmark:
        "logs/benchmarks/extract_clips/{dataset}.tsv"
    threads: CORES
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/extract_clips.py --params {params.files} --reads {params.reads} --dataset {wildcards.dataset} --input {input.root:q} "
        "--out {output.store} --metrics {output.metrics} --threads {threads} > {log} 2>&1"
