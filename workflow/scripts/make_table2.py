"""Stage make_table2: the paper's Table 2 (ablations), mean ± std over the sweep's seeds, beside the paper's rows.

Inputs:  --tokenizer-evals FILE ... (results/eval/tokenizer/table2-<variant>-s<seed>.json of every trained run),
         --generator-evals FILE ... (the same of evaluate_generator, sampling-only runs included).
Outputs: --md FILE (Markdown table), --html FILE (that Markdown as one HTML page, for snakemake --report),
         --csv FILE (per-variant summary), --runs-csv FILE (one row per run).
Tiny run: python workflow/scripts/make_table2.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer-evals results/eval/tokenizer/*.json --generator-evals results/eval/generator/*.json \
    --md reports/table2.md --html reports/table2.html --csv reports/table2.csv --runs-csv reports/table2_runs.csv
"""

from __future__ import annotations

from larp import cli
from larp.stages.tables import run_make_table2


def build():
    p = cli.parser(__doc__, "tokenizer-evals", "generator-evals", "md", "html", "csv")
    p.add_argument("--runs-csv", required=True, help="per-run (variant, seed) values")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_make_table2(
        params, tokenizer_evals=a.tokenizer_evals, generator_evals=a.generator_evals, md_path=a.md, csv_path=a.csv,
        runs_csv=a.runs_csv, html_path=a.html))


if __name__ == "__main__":
    raise SystemExit(main())
