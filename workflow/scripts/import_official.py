"""Stage import_official: one released checkpoint of the official code (a local folder or hf://owner/name) as ours.

Inputs:  params `official.<name>` (kind tokenizer | generator, source, revision; a generator also names its
         tokenizer variant and dataset). An hf:// source is fetched into --cache-dir with huggingface_hub (network).
Outputs: --out DIR (results/tokenizer/<name> or results/generator/<name>: model.safetensors with our configuration
         and provenance, config.json, provenance.json with the sha256 of every source file), --metrics FILE.
Refuses (exit 2), naming each offender: unknown or unsupported config.json keys, missing, extra or mis-shaped tensors.
Tiny run (tests/unit/test_official.py builds official-format folders):
    python workflow/scripts/import_official.py --params params.yaml my-official.yaml --name larp-official \
        --out results/tokenizer/larp-official --metrics results/metrics/import_official/tokenizer/larp-official.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.official import run_import_official


def build():
    p = cli.parser(__doc__, "out", "metrics")
    p.add_argument("--name", required=True, help="a key of `official` in params")
    p.add_argument("--cache-dir", default="work/official", help="download cache of hf:// sources (outside outputs)")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_import_official(
        params, a.name, out_dir=a.out, metrics_path=a.metrics, cache_dir=a.cache_dir))


if __name__ == "__main__":
    raise SystemExit(main())
