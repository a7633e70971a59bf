"""Stage evaluate_generator: class-conditional gFVD or frame-prediction FVD of one generator variant's samples.

class: the generated videos vs the Random(clips.gfvd_seed) train-split chunks they were conditioned on;
fp: the same with test-split chunks, both resized to evaluation.fp_resolution, all frames
(docs/official-code-facts.md §6).
Real statistics are cached in --cache-dir.
Inputs:  --samples DIR (sample_videos output), --generator DIR (its parameter count), --clips DIR (the clip
         store of its dataset), --detector DIR (that dataset's train_detector output).
Outputs: --out FILE (JSON; the distance is named by its detector, e.g. "gfvd[clf-synthetic]_1024_16f").
Tiny run: python workflow/scripts/evaluate_generator.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --variant class-larp --samples results/samples/class-larp --generator results/generator/class-larp \
    --clips results/clips/synthetic --detector results/detector/synthetic --cache-dir work/fvd_cache \
    --out results/eval/generator/class-larp.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.evaluation import run_evaluate_generator


def build():
    p = cli.parser(__doc__, "generator-variant", "generator", "clips", "detector", "cache-dir", "out")
    p.add_argument("--samples", required=True, help="sample_videos output folder")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_evaluate_generator(
        params, a.variant, samples_dir=a.samples, generator_dir=a.generator, clips=a.clips,
        detector_dir=a.detector, cache_dir=a.cache_dir, out_path=a.out))


if __name__ == "__main__":
    raise SystemExit(main())
