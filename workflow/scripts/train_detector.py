"""Stage train_detector: the feature detector of every Fréchet distance on one dataset.

detector.kind classifier: trains a small 3D-CNN video classifier on the dataset's train split (its penultimate
features stand in for I3D where the I3D weights are unavailable; its distances are never called FVD).
detector.kind i3d: verifies detector.i3d_path by its git-blob SHA-1 and records it (no training).
Inputs:  --clips DIR (the dataset's clip store, results/clips/<dataset>).
Outputs: --out DIR (detector.json; model.safetensors for the classifier), --metrics FILE (test accuracy).
Tiny run: python workflow/scripts/train_detector.py --params params.yaml tests/fixtures/params.tiny.yaml \
    --dataset synthetic --clips results/clips/synthetic --out results/detector/synthetic \
    --metrics results/metrics/train_detector/synthetic.json
"""

from __future__ import annotations

from larp import cli
from larp.stages.evaluation import run_train_detector


def build():
    p = cli.parser(__doc__, "dataset", "clips", "out", "metrics")
    return p


def main(argv=None) -> int:
    return cli.run(argv, build, lambda a, params: run_train_detector(
        params, a.dataset, clips=a.clips, out_dir=a.out, metrics_path=a.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
