"""Stage train_generator: train one AR generator variant (class-conditional or frame prediction) on LARP tokens.

Inputs:  --tokens DIR: results/tokens/<tokenizer variant>/<dataset> ({train,test}.npz + meta.json, encode_tokens).
Outputs: --out DIR (model.safetensors with the full configuration incl. tokenizer variant and dataset, config.json),
         --metrics FILE (DVC metrics). Resumable checkpoints: --work DIR (not an output).
Runs under torchrun for DistributedDataParallel (gloo on CPU, NCCL on GPU).
Tiny run: python workflow/scripts/train_generator.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --variant class-larp --tokens results/tokens/larp/synthetic --work work/train_generator/class-larp \
    --out results/generator/class-larp --metrics results/metrics/train_generator/class-larp.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.generator import run_train_generator


def build():
    p = cli.parser(__doc__, "generator-variant", "work", "out", "metrics")
    p.add_argument("--tokens", required=True, metavar="DIR",
                   help="the token folder of the variant's tokenizer and dataset: results/tokens/<tokenizer>/<dataset>")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_train_generator(
        params, a.variant, tokens=a.tokens, work_dir=a.work, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
