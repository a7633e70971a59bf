"""Shared command-line plumbing for the stage scripts in ``workflow/scripts/``.

Every script: ``--params FILE [FILE ...]`` (merged in order, as Snakemake merges ``--configfile``), ``--threads N``
(Snakemake passes ``{threads}``; default: every core), ``--reads SECTION ...`` (the sections its rule declares: the
stage then sees only those, larp.reads), its own inputs/outputs, then exactly one library call.
Expected failures (bad parameters, bad data, missing optional dependencies, a non-finite loss) print one clear
message to stderr and exit with code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import load_params
from .errors import ExpectedError
from .reads import stage_view
from .runtime import set_threads

_RUN_NAMES = "or a sweep run table2-<variant>-s<seed> / scaling-<point>-s<seed>"
# Required arguments that several stage scripts share: name -> (flag, help). A script names the ones it takes in
# parser(); its own arguments follow.
SHARED_ARGS: dict[str, tuple[str, str | None]] = {
    "tokenizer-variant": ("--variant", f"a key of `tokenizers` in params, {_RUN_NAMES}"),
    "generator-variant": ("--variant", f"a key of `generators` in params, {_RUN_NAMES}"),
    "dataset": ("--dataset", "a key of `datasets` in params"),
    "tokenizer": ("--tokenizer", "train_tokenizer output folder"),
    "generator": ("--generator", "train_generator output folder"),
    "clips": ("--clips", "clip store results/clips/<dataset> (extract_clips output)"),
    "detector": ("--detector", "train_detector output folder results/detector/<dataset>"),
    "cache-dir": ("--cache-dir", "real-statistics cache (outside declared outputs)"),
    "work": ("--work", "resumable checkpoint folder (outside declared outputs)"),
    "tokenizer-evals": ("--tokenizer-evals", "evaluate_tokenizer outputs <run>.json (each run the table needs)"),
    "generator-evals": ("--generator-evals", "evaluate_generator outputs <run>.json (each run the table needs)"),
    "out": ("--out", None),
    "metrics": ("--metrics", "flat metrics file (DVC metrics)"),
    "report": ("--report", "folder of figures for people (reports/)"),
    "md": ("--md", "Markdown table to write"),
    "html": ("--html", "HTML page of the same Markdown to write (shown inline by snakemake --report)"),
    "csv": ("--csv", "CSV table to write"),
}

MANY = {"tokenizer-evals", "generator-evals"}  # shared arguments that take a list of files (possibly empty)


def parser(doc: str | None, *shared: str) -> argparse.ArgumentParser:
    """``--params`` and ``--threads``, then the required ``shared`` arguments named (keys of SHARED_ARGS)."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None,
                                epilog="Parameters come from the --params files (params.yaml by default).")
    p.add_argument("--params", nargs="+", default=["params.yaml"], metavar="FILE",
                   help="parameter files merged in order (default: params.yaml)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--reads", nargs="+", default=None, metavar="SECTION",
                   help="the parameter sections this stage declares (larp.reads): it sees only these; the "
                        "workflow passes its rule's declaration (default: every section)")
    for name in shared:
        flag, help_text = SHARED_ARGS[name]
        if name in MANY:
            p.add_argument(flag, required=True, nargs="*", metavar="FILE", help=help_text)
        else:
            p.add_argument(flag, required=True, help=help_text)
    return p


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a script reports in one line (exit code 2): every :class:`larp.errors.ExpectedError`, and a missing
    input file."""
    return (ExpectedError, FileNotFoundError)


def run(argv: Sequence[str] | None, build: Callable[[], argparse.ArgumentParser],
        body: Callable[[argparse.Namespace, dict[str, Any]], Any]) -> int:
    """Parse ``argv``, load and validate params, set threads, run ``body(args, params)``; map expected errors to 2."""
    args = build().parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        params = load_params(args.params)
        if args.reads is not None:  # the rule's declaration: the stage sees only what it declared
            params = stage_view(params, args.reads, getattr(args, "variant", None))
        args.threads_used = set_threads(args.threads)
        body(args, params)
    except expected_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
