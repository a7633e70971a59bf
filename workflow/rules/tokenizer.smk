"""Stages 2-3: LARP tokenizer training with its AR prior (and the patchwise baseline), token precomputation.

The training rules (here and train_generator) launch their script by the job's `gpu` resource, which a profile sets
per rule (profiles/slurm): `python` for 0 or 1 GPU (the command dvc.yaml runs), `torchrun --standalone
--nproc-per-node=N` for N > 1 (one DDP process per GPU; the scripts split the global batch over them), each process
taking its share of the job's threads. Both are params derived from `resources`, which Snakemake keeps out of the
params rerun trigger (snakemake/rules.py `_is_deriving_function`): outputs stay up to date when the GPU count changes.
"""

# Snakemake silently lowers a job's resource to the --resources cap (snakemake/rules.py `expand_resources`), and
# profiles/default caps gpu at 1 whenever it is loaded, i.e. unless another --workflow-profile replaces it. A profile
# asking for 8 GPUs per training job would then train on one: stop instead. Both values are read from the public
# resource settings (--resources, --set-resources; resource_value in common.smk).
_GPU_CAP = resource_value((workflow.resource_settings.resources or {}).get("gpu"))
_GPU_OVER_CAP = {
    rule_name: asked
    for rule_name, res in workflow.resource_settings.overwrite_resources.items()
    if isinstance(asked := resource_value(dict(res).get("gpu")), int)
    and isinstance(_GPU_CAP, int)
    and asked > _GPU_CAP
}
if _GPU_OVER_CAP:
    raise WorkflowError(
        f"--set-resources asks for {', '.join(f'{r}:gpu={n}' for r, n in _GPU_OVER_CAP.items())} but --resources caps "
        f"gpu at {_GPU_CAP}, and Snakemake would silently give each job {_GPU_CAP}. On SLURM pass the profile as "
        f"--workflow-profile profiles/slurm (it replaces profiles/default); on one machine add --resources gpu=<GPUs>."
    )


rule train_tokenizer:
    input:
        train=lambda wc: [clip_store(n) for n in TOKENIZER_CFG[wc.tok]["train_datasets"]],
        val=lambda wc: clip_store(TOKENIZER_CFG[wc.tok]["val_dataset"]),
    output:
        model=directory("results/tokenizer/{tok}"),
        metrics="results/metrics/train_tokenizer/{tok}.json",
        report=report(directory("reports/tokenizer/{tok}"), patterns=["{name}.png", "{name}.mp4"],
                      caption="../report/tokenizer.rst", category="Tokenizer reconstructions", subcategory="{tok}"),
    params:
        files=PARAMS,
        **reads("tokenizer:variant", "clips", "run"),
        launch=lambda wc, resources: (
            f"torchrun --standalone --nproc-per-node={resources.gpu}" if resources.get("gpu", 0) > 1 else "python"
        ),
        process_threads=lambda wc, threads, resources: max(1, threads // max(1, resources.get("gpu", 0))),
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
        "{params.launch} workflow/scripts/train_tokenizer.py --params {params.files} --reads {params.reads} --variant {wildcards.tok} "
        "--train-clips {input.train} --val-clips {input.val} --work work/train_tokenizer/{wildcards.tok} --out {output.model} "
        "--metrics {output.metrics} --report {output.report} --threads {params.process_threads} > {log} 2>&1"


rule encode_tokens:
    input:
        tokenizer="results/tokenizer/{tok}",
        clips=[clip_store(d) for d in DATASETS],
    output:
        tokens=directory("results/tokens/{tok}"),
        metrics="results/metrics/encode_tokens/{tok}.json",
    params:
        files=PARAMS,
        **reads("tokens", "run"),
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
        "python workflow/scripts/encode_tokens.py --params {params.files} --reads {params.reads} --tokenizer {input.tokenizer} --clips {input.clips} "
        "--out {output.tokens} --metrics {output.metrics} --threads {threads} > {log} 2>&1"
