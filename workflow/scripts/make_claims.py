"""Stage make_claims: states for each of the paper's claims whether it held on this run, with the numbers.

Inputs:  --table2-runs FILE (reports/table2_runs.csv), --ngrams DIR (reports/analysis/ngrams),
         --redundancy DIR (reports/analysis/redundancy).
Outputs: --md FILE (reports/claims.md), --html FILE (reports/claims.html: that Markdown as one HTML page, for
         snakemake --report).
Tiny run: python workflow/scripts/make_claims.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --table2-runs reports/table2_runs.csv --ngrams reports/analysis/ngrams --redundancy reports/analysis/redundancy \
    --md reports/claims.md --html reports/claims.html
"""

from __future__ import annotations

from larp import cli
from larp.stages.analysis import run_claims


def build():
    p = cli.parser(__doc__, "md", "html")
    p.add_argument("--table2-runs", required=True, help="per-run Table 2 values (make_table2 --runs-csv)")
    p.add_argument("--ngrams", required=True, help="analysis_ngrams output folder")
    p.add_argument("--redundancy", required=True, help="analysis_redundancy output folder")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_claims(
        params, table2_runs=a.table2_runs, ngrams_dir=a.ngrams, redundancy_dir=a.redundancy, out_md=a.md,
        out_html=a.html))


if __name__ == "__main__":
    raise SystemExit(main())
