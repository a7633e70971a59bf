"""Stage 7: latent-space analyses (paper App. B.2-B.4) and the claims report (issue 6)."""

ANALYSIS = config["analysis"]
NGRAM_RUNS = [r for runs in ngram_runs(config).values() for r in runs]
VAL_CLIPS = lambda variant: clip_store(TOKENIZER_CFG[variant]["val_dataset"])


rule analysis_ngrams:
    input:
        generators=expand("results/generator/{run}", run=NGRAM_RUNS),
    output:
        report=report(directory("reports/analysis/ngrams"), patterns=["{name}.png", "{name}.csv"],
                      caption="../report/analysis.rst", category="Analyses", subcategory="ngrams"),
        metrics="results/metrics/analysis/ngrams.json",
    params:
        files=PARAMS,
        **reads("analysis.ngrams", "table2", "generator", "run"),
    log:
        "logs/analysis/ngrams.log",
    benchmark:
        "logs/benchmarks/analysis_ngrams.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/analysis_ngrams.py --params {params.files} --reads {params.reads} --generators {input.generators} "
        "--out {output.report} --metrics {output.metrics} --threads {threads} > {log} 2>&1"


rule analysis_importance:
    input:
        tokenizer=f"results/tokenizer/{ANALYSIS['importance']['tokenizer']}",
        clips=VAL_CLIPS(ANALYSIS["importance"]["tokenizer"]),
    output:
        report=report(directory("reports/analysis/importance"), patterns=["{name}.png", "{name}.csv"],
                      caption="../report/analysis.rst", category="Analyses", subcategory="importance"),
        metrics="results/metrics/analysis/importance.json",
    params:
        files=PARAMS,
        **reads("analysis.importance", "clips", "run"),
    log:
        "logs/analysis/importance.log",
    benchmark:
        "logs/benchmarks/analysis_importance.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/analysis_importance.py --params {params.files} --reads {params.reads} --tokenizer {input.tokenizer} "
        "--clips {input.clips} --out {output.report} --metrics {output.metrics} --threads {threads} > {log} 2>&1"


rule analysis_redundancy:
    input:
        tokenizers=expand("results/tokenizer/{tok}", tok=ANALYSIS["redundancy"]["tokenizers"]),
        clips=[VAL_CLIPS(t) for t in ANALYSIS["redundancy"]["tokenizers"]],  # one per tokenizer, in order
    output:
        report=report(directory("reports/analysis/redundancy"), patterns=["{name}.png", "{name}.csv"],
                      caption="../report/analysis.rst", category="Analyses", subcategory="redundancy"),
        metrics="results/metrics/analysis/redundancy.json",
    params:
        files=PARAMS,
        **reads("analysis.redundancy", "clips", "run"),
    log:
        "logs/analysis/redundancy.log",
    benchmark:
        "logs/benchmarks/analysis_redundancy.tsv"
    threads: HALF
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPU,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/analysis_redundancy.py --params {params.files} --reads {params.reads} --tokenizers {input.tokenizers} "
        "--clips {input.clips} --out {output.report} --metrics {output.metrics} --threads {threads} > {log} 2>&1"


rule make_claims:
    input:
        runs="reports/table2_runs.csv",
        ngrams="reports/analysis/ngrams",
        redundancy="reports/analysis/redundancy",
    output:
        md="reports/claims.md",
        html=report("reports/claims.html", caption="../report/claims.rst", category="Claims"),
    params:
        files=PARAMS,
        **reads("analysis.claims", "analysis.ngrams", "analysis.redundancy", "table2.reference", "table2.seeds"),
    log:
        "logs/make_claims/claims.log",
    benchmark:
        "logs/benchmarks/make_claims.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/larp.yaml"
    shell:
        "python workflow/scripts/make_claims.py --params {params.files} --reads {params.reads} --table2-runs {input.runs} "
        "--ngrams {input.ngrams} --redundancy {input.redundancy} --md {output.md} "
        "--html {output.html} --threads {threads} > {log} 2>&1"
