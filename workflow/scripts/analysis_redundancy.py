"""Stage analysis_redundancy: reconstruction PSNR against temporal repetition level (App. B.2, Fig. 8).

Scores the two tokenizers of analysis.redundancy.tokenizers (holistic first, patchwise second) on repeated clips.
Inputs:  --tokenizers DIR DIR (results/tokenizer/<each>), --clips DIR [DIR] (each one's val_dataset clip store,
         or one for both).
Outputs: --out DIR (reports/analysis/redundancy: redundancy.{csv,png}), --metrics FILE (PSNR gain per tokenizer).
Tiny run: python workflow/scripts/analysis_redundancy.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizers results/tokenizer/larp results/tokenizer/patchwise --clips results/clips/synthetic \
    --out reports/analysis/redundancy \
    --metrics results/metrics/analysis/redundancy.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.analysis import run_redundancy


def build():
    p = cli.parser(__doc__, "out", "metrics")
    p.add_argument("--tokenizers", nargs="+", required=True, help="train_tokenizer output folders, holistic first")
    p.add_argument("--clips", nargs="+", required=True, help="clip stores: one per tokenizer, or one for all")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_redundancy(
        params, tokenizers=a.tokenizers, clips=a.clips, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
