"""Stage extract_clips: decode, resize + centre crop and store the clips of one dataset (larp.data.clips).

Inputs:  ``--input`` = the dataset root (must equal params datasets.<name>.root); params ``datasets.<name>`` and
         ``clips`` (frames, stride, resolution, frame cap, failure threshold, shard size).
Outputs: ``--out`` (published atomically): train/ and test/ (frames-NNNNN.npy shards + manifest.csv), classes.csv,
         failures.csv, summary.json; ``--metrics`` (flat counts for DVC). When too many videos fail nothing is
         published, the failures are written to ``<out>.failures.csv`` and the exit code is 2.
Tiny:    python workflow/scripts/extract_clips.py --params params.yaml tests/fixtures/params.tiny.yaml --dataset synthetic --input data/synthetic --out results/clips/synthetic --metrics /tmp/m.json --threads 1
"""

from __future__ import annotations

from larp import cli
from larp.stages.data import run_extract_clips


def build():
    p = cli.parser(__doc__, "dataset", "metrics")
    p.add_argument("--input", required=True, help="the dataset root (the same folder as datasets.<name>.root)")
    p.add_argument("--out", required=True, help="clip store folder to write, results/clips/<dataset>")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(argv, build, lambda a, params: run_extract_clips(
        params, a.dataset, root=a.input, out=a.out, metrics_path=a.metrics, threads=a.threads_used))


if __name__ == "__main__":
    raise SystemExit(main())
