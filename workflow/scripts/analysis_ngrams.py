"""Stage analysis_ngrams: n-gram histograms, skew and 2-gram class dominance of sampled token sequences (App. B.4).

Samples ``analysis.ngrams.num_sequences`` class-conditional sequences (uniform over classes) from the Table 2
generators with and without the AR prior, one per sweep seed, and writes figures and CSVs.
Inputs:  --generator-dir DIR (holds results/generator/table2-<variant>-s<seed>/).
Outputs: --out DIR (reports/analysis/ngrams: skew.csv, dominance.csv, histogram_<n>gram.{csv,png}, dominance.png),
         --metrics FILE.
Tiny run: python workflow/scripts/analysis_ngrams.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --generator-dir results/generator --out reports/analysis/ngrams --metrics results/metrics/analysis/ngrams.json
"""

from __future__ import annotations

from larp import cli
from larp.analysis.stage import run_ngrams


def build():
    return cli.parser(__doc__, "generator-dir", "out", "metrics")


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_ngrams(
        params, generator_dir=a.generator_dir, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
