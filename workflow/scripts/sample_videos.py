"""Stage sample_videos: class-conditional videos or frame predictions of one generator variant, for scoring.

Inputs:  --generator DIR (a train_generator output), --tokenizer DIR (its tokenizer's train_tokenizer output),
         --clips DIR (the clip store of its dataset; real clips: gFVD chunk sample of the train split, or
         frame-prediction clips of the test split).
Outputs: --out DIR (videos.npy uint8 (N,T,H,W,3), labels.npy, real_index.npy (video, start), tokens.npy,
         cond_tokens.npy for frame prediction, info.json), --metrics FILE, --report DIR (GIF per class,
         contact_sheet.png, metrics.json).
Tiny run: python workflow/scripts/sample_videos.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --variant class-larp --generator results/generator/class-larp --tokenizer results/tokenizer/larp \
    --clips results/clips/synthetic --out results/samples/class-larp --metrics results/metrics/sample_videos/class-larp.json \
    --report reports/samples/class-larp
"""

from __future__ import annotations

from larp import cli
from larp.stages.generator import run_sample_videos


def build():
    return cli.parser(__doc__, "generator-variant", "generator", "tokenizer", "clips", "out", "metrics", "report")


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_sample_videos(
        params, a.variant, generator_dir=a.generator, tokenizer_dir=a.tokenizer, clips=a.clips,
        out_dir=a.out, metrics_path=a.metrics, report_dir=a.report))


if __name__ == "__main__":
    raise SystemExit(main())
