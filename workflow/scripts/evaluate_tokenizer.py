"""Stage evaluate_tokenizer: rFVD, PSNR, SSIM and LPIPS of one tokenizer variant (docs/official-code-facts.md §6).

rFVD: one seeded window per video of evaluation.rfvd_split of the variant's val_dataset; reals = those clips,
fakes = their deterministic-SVQ reconstructions, clamped. Real statistics are cached in --cache-dir.
Inputs:  --tokenizer DIR (a train_tokenizer output), --clips DIR (the clip store of its val_dataset),
         --detector DIR (that dataset's train_detector output).
Outputs: --out FILE (JSON; the distance is named by its detector, e.g. "rfvd[clf-synthetic]_720_16f").
Tiny run: python workflow/scripts/evaluate_tokenizer.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --variant larp --tokenizer results/tokenizer/larp --clips results/clips/synthetic --detector results/detector/synthetic \
    --cache-dir work/fvd_cache --out results/eval/tokenizer/larp.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.evaluation import run_evaluate_tokenizer


def build():
    p = cli.parser(__doc__, "tokenizer-variant", "tokenizer", "clips", "detector", "cache-dir", "out")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_evaluate_tokenizer(
        params, a.variant, tokenizer_dir=a.tokenizer, clips=a.clips, detector_dir=a.detector,
        cache_dir=a.cache_dir, out_path=a.out))


if __name__ == "__main__":
    raise SystemExit(main())
