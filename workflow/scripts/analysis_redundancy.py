"""Stage analysis_redundancy: reconstruction PSNR against temporal repetition level (App. B.2, Fig. 8).

Scores the two tokenizers of analysis.redundancy.tokenizers (holistic first, patchwise second) on repeated clips.
Inputs:  --tokenizer-dir DIR (results/tokenizer), --clips-dir DIR.
Outputs: --out DIR (reports/analysis/redundancy: redundancy.{csv,png}), --metrics FILE (PSNR gain per tokenizer).
Tiny run: python workflow/scripts/analysis_redundancy.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer-dir results/tokenizer --clips-dir results/clips --out reports/analysis/redundancy \
    --metrics results/metrics/analysis/redundancy.json
"""

from __future__ import annotations

from larp import cli
from larp.analysis.stage import run_redundancy


def build():
    return cli.parser(__doc__, "clips-dir", "tokenizer-dir", "out", "metrics")


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_redundancy(
        params, tokenizer_dir=a.tokenizer_dir, clips_dir=a.clips_dir, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
