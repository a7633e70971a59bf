"""Stage make_synthetic: render the embedded class-labelled action video set (larp.data.synthetic).

Inputs:  params ``synthetic`` (classes, groups, clips per group, frames, size, fps, codec, container, seed).
Outputs: ``--out`` (published atomically): ``<Class>/v_<Class>_gGG_cCC.<ext>``, ``ucfTrainTestlist/`` (UCF-101
         layout: classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt) and DATASET.md describing the classes.
Tiny:    python workflow/scripts/make_synthetic.py --params params.yaml tests/fixtures/params.tiny.yaml --out /tmp/syn --threads 1
"""

from __future__ import annotations

from larp import cli
from larp.stages.data import run_make_synthetic


def build():
    p = cli.parser(__doc__)
    p.add_argument("--out", required=True, help="dataset folder to write (datasets.synthetic.root)")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(argv, build, lambda a, params: run_make_synthetic(params, a.out, threads=a.threads_used))


if __name__ == "__main__":
    raise SystemExit(main())
