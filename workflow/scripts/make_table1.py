"""Stage make_table1: the paper's Table 1 with this run's measured rows beside the paper's (quoted) rows.

Inputs:  --tokenizer-evals FILE ... (results/eval/tokenizer/<variant>.json of every `tokenizers` variant),
         --generator-evals FILE ... (results/eval/generator/<variant>.json of every `generators` variant).
Outputs: --md FILE (Markdown table + protocol and detector notes), --html FILE (that Markdown as one HTML page,
         for snakemake --report), --csv FILE (the same table).
Tiny run: python workflow/scripts/make_table1.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer-evals results/eval/tokenizer/*.json --generator-evals results/eval/generator/*.json \
    --md reports/table1.md --html reports/table1.html --csv reports/table1.csv
"""

from __future__ import annotations

from larp import cli
from larp.stages.tables import run_make_table1


def build():
    p = cli.parser(__doc__, "tokenizer-evals", "generator-evals", "md", "html", "csv")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_make_table1(
        params, tokenizer_evals=a.tokenizer_evals, generator_evals=a.generator_evals, md_path=a.md, csv_path=a.csv,
        html_path=a.html))


if __name__ == "__main__":
    raise SystemExit(main())
