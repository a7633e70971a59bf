"""Stage analysis_ngrams: n-gram histograms, skew and 2-gram class dominance of sampled token sequences (App. B.4).

Samples ``analysis.ngrams.num_sequences`` class-conditional sequences (uniform over classes) from the Table 2
generators with and without the AR prior, one per sweep seed, and writes figures and CSVs.
Inputs:  --generators DIR [DIR ...] (results/generator/table2-<variant>-s<seed> of each n-gram run).
Outputs: --out DIR (reports/analysis/ngrams: skew.csv, dominance.csv, histogram_<n>gram.{csv,png}, dominance.png),
         --metrics FILE.
Tiny run: python workflow/scripts/analysis_ngrams.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --generators results/generator/table2-* --out reports/analysis/ngrams --metrics results/metrics/analysis/ngrams.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.analysis import run_ngrams


def build():
    p = cli.parser(__doc__, "out", "metrics")
    p.add_argument("--generators", nargs="+", required=True, metavar="DIR",
                   help="the train_generator outputs of the n-gram runs (analysis.ngrams labels x table2 seeds)")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_ngrams(
        params, generators=a.generators, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
