"""Reports over many evaluations, their code in larp.analysis: Table 1 (the declared variants), Table 2 (the
`table2` sweep) and the scaling figures (paper Fig. 1b, 3a, 3b: the `scaling` sweep). A sweep's runs
<sweep>-<entry>-s<seed> (common.smk: TABLE2_TRAINED, TABLE2_SAMPLED, SCALING_TRAINED) are built by the ordinary
stages like any variant; each table rule takes exactly its runs' evaluation files."""


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
