"""Stage train_tokenizer: train one tokenizer variant (LARP with its AR prior, an ablation, or the patchwise baseline).

Inputs:  --train-clips DIR [DIR ...] (results/clips/<dataset> of each of the variant's train_datasets),
         --val-clips DIR (results/clips/<its val_dataset>).
Outputs: --out DIR (model.safetensors with the full configuration, config.json), --metrics FILE (DVC metrics),
         --report DIR (reconstructions.png, metrics.json). Resumable checkpoints: --work DIR (not an output).
Runs under torchrun for DistributedDataParallel (gloo on CPU, NCCL on GPU).
Tiny run: python workflow/scripts/train_tokenizer.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --variant larp --train-clips results/clips/synthetic --val-clips results/clips/synthetic \
    --work work/train_tokenizer/larp --out results/tokenizer/larp \
    --metrics results/metrics/train_tokenizer/larp.json --report reports/tokenizer/larp
"""

from __future__ import annotations

from larp import cli
from larp.stages.tokenizer import run_train_tokenizer


def build():
    p = cli.parser(__doc__, "tokenizer-variant", "work", "out", "metrics", "report")
    p.add_argument("--train-clips", nargs="+", required=True, metavar="DIR",
                   help="the clip stores of the variant's train_datasets (extract_clips outputs)")
    p.add_argument("--val-clips", required=True, metavar="DIR", help="the clip store of the variant's val_dataset")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_train_tokenizer(
        params, a.variant, train_clips=a.train_clips, val_clips=a.val_clips, work_dir=a.work, out_dir=a.out, metrics_path=a.metrics,
        report_dir=a.report))


if __name__ == "__main__":
    raise SystemExit(main())
