"""Stages 4-5: AR generator training on the tokens and sampling (class-conditional videos, frame predictions)."""


wildcard_constraints:
    gen="|".join(ALL_GENERATORS),


rule train_generator:
    input:
        tokens=lambda wc: f"results/tokens/{GENERATOR_CFG[wc.gen]['tokenizer']}",
    output:
        model=directory("results/generator/{gen}"),
        metrics="results/metrics/train_generator/{gen}.json",
    params:
        files=PARAMS,
        **reads("generator:variant:training", "run"),
        # training reads the folder of its dataset inside encode_tokens' output (a schema-checked name)
        dataset=lambda wc: GENERATOR_CFG[wc.gen]["dataset"],
        # python, or torchrun with one process per GPU (see tokenizer.smk)
        launch=lambda wc, resources: (
            f"torchrun --standalone --nproc-per-node={resources.gpu}" if resources.get("gpu", 0) > 1 else "python"
        ),
        process_threads=lambda wc, threads, resources: max(1, threads // max(1, resources.get("gpu", 0))),
    log:
        "logs/train_generator/{gen}.log",
    benchmark:
        "logs/benchmarks/train_generator/{gen}.tsv"
    threads: HALF
    resources:
        mem_mb=6000,
        runtime=600,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "{params.launch} workflow/scripts/train_generator.py --params {params.files} --reads {params.reads} --variant {wildcards.gen} "
        "--tokens {input.tokens}/{params.dataset} --work work/train_generator/{wildcards.gen} --out {output.model} "
        "--metrics {output.metrics} --threads {params.process_threads} > {log} 2>&1"


rule sample_videos:
    input:
        generator=generator_weights,
        tokenizer=lambda wc: f"results/tokenizer/{GENERATOR_CFG[wc.gen]['tokenizer']}",
        clips=lambda wc: clip_store(GENERATOR_CFG[wc.gen]["dataset"]),
    output:
        samples=directory("results/samples/{gen}"),
        metrics="results/metrics/sample_videos/{gen}.json",
        report=report(directory("reports/samples/{gen}"), patterns=["{name}.png", "{name}.mp4"],
                      caption="../report/samples.rst", category="Samples", subcategory="{gen}"),
    params:
        files=PARAMS,
        **reads("generator:variant", "clips", "run"),
    log:
        "logs/sample_videos/{gen}.log",
    benchmark:
        "logs/benchmarks/sample_videos/{gen}.tsv"
    threads: HALF
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/sample_videos.py --params {params.files} --reads {params.reads} --variant {wildcards.gen} --generator {input.generator} "
        "--tokenizer {input.tokenizer} --clips {input.clips} --out {output.samples} --metrics {output.metrics} "
        "--report {output.report} --threads {threads} > {log} 2>&1"
