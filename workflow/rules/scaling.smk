"""The scaling sweeps (paper Fig. 1b, Fig. 3a, Fig. 3b): runs scaling-<point>-s<seed> (common.smk SCALING_TRAINED)
are built by the ordinary stages like any variant; make_scaling plots and tabulates their evaluations."""


rule make_scaling:
    input:
        tokenizers=expand("results/eval/tokenizer/{tok}.json", tok=SCALING_TRAINED),
        generators=expand("results/eval/generator/{gen}.json", gen=SCALING_TRAINED),
    output:
        report(directory("reports/scaling"), patterns=["{name}.png", "{name}.csv", "{name}.md"],
               caption="../report/scaling.rst", category="Scaling"),
    params:
        files=PARAMS,
        **reads("scaling", "tokenizer"),
    log:
        "logs/make_scaling/scaling.log",
    benchmark:
        "logs/benchmarks/make_scaling.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/make_scaling.py --params {params.files} --reads {params.reads} --tokenizer-evals {input.tokenizers} "
        "--generator-evals {input.generators} --out {output} --threads {threads} > {log} 2>&1"
