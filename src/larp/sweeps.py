"""Sweeps declared once in params.yaml and expanded into runs by Snakemake and DVC alike (paper Table 2, §4.2).

``table2`` names its variants (each a set of dotted overrides of the ``tokenizer`` and ``generator`` sections) and
its seeds. Every (variant, seed) is one run named ``table2-<variant>-s<seed>``; the name works wherever a tokenizer
or generator variant name does (``variant_section`` resolves it), so a run goes through the very stages Table 1
uses, writing results/tokenizer/<run>, results/generator/<run>, ... . DVC expands the same runs with ``matrix``
over ``table2.variants`` x ``table2.seeds``.

``sampling_variants`` are rows that differ only in how the reference generator is sampled (the paper's "No CFG"
row): they reuse the reference run's tokenizer and generator weights and re-run sampling and scoring only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SWEEP = "table2"
_RUN = re.compile(rf"^{SWEEP}-(?P<variant>[a-z0-9][a-z0-9-]*)-s(?P<seed>\d+)$")


def run_name(variant: str, seed: int) -> str:
    return f"{SWEEP}-{variant}-s{seed}"


def parse_run(name: str) -> tuple[str, int] | None:
    """``table2-no-prior-s1`` -> ("no-prior", 1); None for a name that is not a sweep run."""
    m = _RUN.match(name)
    return (m["variant"], int(m["seed"])) if m else None


def _sweep(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return params.get(SWEEP) or {}


def trained_runs(params: Mapping[str, Any]) -> list[str]:
    """Runs that train their own tokenizer and generator: every variant x seed."""
    sw = _sweep(params)
    return [run_name(v, s) for v in sorted(sw.get("variants") or {}) for s in sw.get("seeds") or []]


def sampling_runs(params: Mapping[str, Any]) -> list[str]:
    """Runs that only re-sample the reference run of the same seed."""
    sw = _sweep(params)
    return [run_name(v, s) for v in sorted(sw.get("sampling_variants") or {}) for s in sw.get("seeds") or []]


def generator_source(params: Mapping[str, Any], name: str) -> str:
    """The run whose generator weights ``name`` samples: itself, or the reference run for a sampling variant."""
    parsed = parse_run(name)
    if parsed and parsed[0] in (_sweep(params).get("sampling_variants") or {}):
        return run_name(_sweep(params)["reference"], parsed[1])
    return name


def run_overrides(params: Mapping[str, Any], section: str, name: str) -> dict[str, Any] | None:
    """The dotted overrides of ``section`` ("tokenizer" | "generator") that make sweep run ``name``, or None if
    ``name`` is not a declared run. Order: the sweep's common overrides, the variant's, then the seed (and, for the
    generator, the run's own tokenizer and the sweep's generator mode)."""
    parsed = parse_run(name)
    if parsed is None:
        return None
    variant, seed = parsed
    sw = _sweep(params)
    variants, sampling = sw.get("variants") or {}, sw.get("sampling_variants") or {}
    if seed not in (sw.get("seeds") or []) or (variant not in variants and variant not in sampling):
        return None
    trained = sw["reference"] if variant in sampling else variant
    out = {**((sw.get("common") or {}).get(section) or {}), **((variants[trained] or {}).get(section) or {}),
           "seed": seed}
    if section == "generator":
        out.update({"tokenizer": run_name(trained, seed), "mode": sw.get("mode", "class"), "sampling.seed": seed})
        out.update({f"sampling.{k}": v for k, v in (sampling.get(variant) or {}).items()})
    return out
