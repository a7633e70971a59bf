"""Stage analysis_importance: PSNR drop per replaced token and one token's per-pixel heatmap (App. B.3, Fig. 10-11).

Inputs:  --tokenizer DIR (results/tokenizer/<analysis.importance.tokenizer>), --clips DIR (results/clips/<its
         val_dataset>).
Outputs: --out DIR (reports/analysis/importance: importance.{csv,png}, heatmap_token<i>.png, metrics.json),
         --metrics FILE.
Tiny run: python workflow/scripts/analysis_importance.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer results/tokenizer/larp --clips results/clips/synthetic --out reports/analysis/importance \
    --metrics results/metrics/analysis/importance.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.analysis import run_importance


def build():
    p = cli.parser(__doc__, "tokenizer", "out", "metrics")
    p.add_argument("--clips", required=True, help="the tokenizer's val_dataset clip store (results/clips/<dataset>)")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_importance(
        params, tokenizer=a.tokenizer, clips=a.clips, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
