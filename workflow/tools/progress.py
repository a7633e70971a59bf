"""Live progress of a pipeline run in the terminal, without flooding: every --every seconds, the latest progress line
(``[stage] step k/N ... steps/s, ETA``) of each stage log under logs/ that changed since the last look, one line per
running job; `workflow/bin/run-main` runs it beside Snakemake and stops it when Snakemake ends.

    python workflow/tools/progress.py --logs logs --every 30 --pid <snakemake pid>
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

PROGRESS = re.compile(r"^\[[\w./-]+\] step \d+/\d+")


def latest_line(path: Path, tail_bytes: int = 8192) -> str | None:
    """The last progress line of a log file (only its tail is read), else its last non-empty line."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - tail_bytes))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    steps = [ln for ln in lines if PROGRESS.match(ln)]
    return (steps or lines or [None])[-1]


def alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logs", default="logs", help="log folder (default: logs)")
    p.add_argument("--every", type=float, default=30, help="seconds between looks (default: 30)")
    p.add_argument("--pid", type=int, default=None, help="stop when this process has ended")
    args = p.parse_args(argv)
    seen: dict[Path, float] = {}
    start = time.time()
    while alive(args.pid):
        time.sleep(args.every)
        for path in sorted(Path(args.logs).glob("*/*.log")):
            mtime = path.stat().st_mtime
            if mtime < start or seen.get(path) == mtime:
                continue
            seen[path] = mtime
            line = latest_line(path)
            if line:
                job = f"{path.parent.name}/{path.stem}"
                print(f"  [{time.strftime('%H:%M:%S')}] {job}: {line[:160]}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
