"""Stage analysis_importance: PSNR drop per replaced token and one token's per-pixel heatmap (App. B.3, Fig. 10-11).

Inputs:  --tokenizer-dir DIR (results/tokenizer; the variant is analysis.importance.tokenizer), --clips-dir DIR.
Outputs: --out DIR (reports/analysis/importance: importance.{csv,png}, heatmap_token<i>.png, metrics.json),
         --metrics FILE.
Tiny run: python workflow/scripts/analysis_importance.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer-dir results/tokenizer --clips-dir results/clips --out reports/analysis/importance \
    --metrics results/metrics/analysis/importance.json
"""

from __future__ import annotations

from larp import cli
from larp.analysis.stage import run_importance


def build():
    return cli.parser(__doc__, "clips-dir", "tokenizer-dir", "out", "metrics")


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_importance(
        params, tokenizer_dir=a.tokenizer_dir, clips_dir=a.clips_dir, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
