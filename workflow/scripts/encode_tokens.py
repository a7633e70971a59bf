"""Stage encode_tokens: deterministic-SVQ tokens (and frame-prediction condition tokens) of every clip store.

Inputs:  --tokenizer DIR (a train_tokenizer output), --clips DIR [DIR ...] (results/clips/<dataset>, every dataset).
Outputs: --out DIR with <dataset>/{train,test}.npz and <dataset>/meta.json; --metrics FILE.
Tiny run: python workflow/scripts/encode_tokens.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --tokenizer results/tokenizer/larp --clips results/clips/synthetic --out results/tokens/larp \
    --metrics results/metrics/encode_tokens/larp.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.tokenizer import run_encode_tokens


def build():
    p = cli.parser(__doc__, "tokenizer", "out", "metrics")
    p.add_argument("--clips", nargs="+", required=True, metavar="DIR",
                   help="the clip stores to encode (extract_clips outputs); tokens go to <out>/<store folder name>")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_encode_tokens(
        params, tokenizer_dir=a.tokenizer, clips=a.clips, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
