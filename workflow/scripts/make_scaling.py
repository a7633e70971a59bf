"""Stage make_scaling: the paper's scaling figures (Fig. 1b, Fig. 3a, Fig. 3b) from the scaling sweep's evaluations.

Inputs:  --tokenizer-evals FILE ... (results/eval/tokenizer/scaling-<point>-s<seed>.json of every run),
         --generator-evals FILE ... (the same of evaluate_generator).
Outputs: --out DIR: runs.csv (one row per run), points.csv (mean and std per point), scaling.md (tables), and one
         <figure>.png per entry of params `scaling.figures` (rFVD and gFVD panels).
Tiny run: python workflow/scripts/make_scaling.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer-evals results/eval/tokenizer/*.json --generator-evals results/eval/generator/*.json --out reports/scaling
"""

from __future__ import annotations

from larp import cli
from larp.stages.tables import run_make_scaling


def build():
    return cli.parser(__doc__, "tokenizer-evals", "generator-evals", "out")


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_make_scaling(
        params, tokenizer_evals=a.tokenizer_evals, generator_evals=a.generator_evals, out_dir=a.out))


if __name__ == "__main__":
    raise SystemExit(main())
