"""Sweeps declared once in params.yaml and expanded into runs by Snakemake and DVC alike.

A sweep is a top-level params section (``SWEEPS``) that names entries (each a set of dotted overrides of the
``tokenizer`` and ``generator`` sections) and seeds; every (entry, seed) is one run named
``<sweep>-<entry>-s<seed>``, which works wherever a tokenizer or generator variant name does (``variant_section``
resolves it). So a run goes through the very stages Table 1 uses, writing results/tokenizer/<run>,
results/generator/<run>, ... . The generated dvc.yaml (workflow/tools/dag.py) has the same runs as ``foreach`` stages
keyed ``<entry>-<seed>``.

- ``table2`` (paper Table 2, §4.6): ``variants`` are the ablation rows; ``sampling_variants`` are rows that differ only
  in how the reference generator is sampled (the paper's "No CFG" row): they reuse the reference run's tokenizer and
  generator weights and re-run sampling and scoring only.
- ``scaling`` (paper §4.2 Fig. 3a/3b, §4.6 Fig. 1b): ``points`` are token counts with and without the prior and
  tokenizer sizes; ``figures`` say how points become plots (larp.analysis.scaling).

Functions take the sweep as ``sweep=`` and default to ``table2`` (the first sweep; its callers predate the others).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SWEEP = "table2"
# sweep section -> its key of trained entries (each trains its own tokenizer and generator)
SWEEPS: dict[str, str] = {"table2": "variants", "scaling": "points"}
_RUN = re.compile(rf"^(?P<sweep>{'|'.join(SWEEPS)})-(?P<entry>[a-z0-9][a-z0-9-]*)-s(?P<seed>\d+)$")


def run_name(entry: str, seed: int, sweep: str = SWEEP) -> str:
    return f"{sweep}-{entry}-s{seed}"


def find_run(name: str) -> tuple[str, str, int] | None:
    """``scaling-tokens-16-s0`` -> ("scaling", "tokens-16", 0); None for a name that is no sweep's run."""
    m = _RUN.match(name)
    return (m["sweep"], m["entry"], int(m["seed"])) if m else None


def parse_run(name: str, sweep: str = SWEEP) -> tuple[str, int] | None:
    """``table2-no-prior-s1`` -> ("no-prior", 1); None for a name that is not a run of ``sweep``."""
    found = find_run(name)
    return (found[1], found[2]) if found and found[0] == sweep else None


def _sweep(params: Mapping[str, Any], sweep: str) -> Mapping[str, Any]:
    return params.get(sweep) or {}


def entries(params: Mapping[str, Any], sweep: str = SWEEP) -> Mapping[str, Any]:
    """The trained entries of ``sweep`` (table2 variants, scaling points): name -> overrides."""
    return _sweep(params, sweep).get(SWEEPS[sweep]) or {}


def trained_runs(params: Mapping[str, Any], sweep: str = SWEEP) -> list[str]:
    """Runs that train their own tokenizer and generator: every entry x seed."""
    seeds = _sweep(params, sweep).get("seeds") or []
    return [run_name(e, s, sweep) for e in sorted(entries(params, sweep)) for s in seeds]


def sampling_runs(params: Mapping[str, Any], sweep: str = SWEEP) -> list[str]:
    """Runs that only re-sample the reference run of the same seed (table2's sampling_variants)."""
    sw = _sweep(params, sweep)
    return [run_name(v, s, sweep) for v in sorted(sw.get("sampling_variants") or {}) for s in sw.get("seeds") or []]


def all_trained_runs(params: Mapping[str, Any]) -> list[str]:
    """The trained runs of every sweep."""
    return [run for sweep in SWEEPS for run in trained_runs(params, sweep)]


def all_sampling_runs(params: Mapping[str, Any]) -> list[str]:
    """The sampling-only runs of every sweep."""
    return [run for sweep in SWEEPS for run in sampling_runs(params, sweep)]


def ngram_runs(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """{label: [table2 run name per seed]} of the generators the n-gram analysis compares
    (``analysis.ngrams.compare``)."""
    seeds = params[SWEEP]["seeds"]
    return {label: [run_name(v, s) for s in seeds] for label, v in params["analysis"]["ngrams"]["compare"].items()}


def generator_source(params: Mapping[str, Any], name: str) -> str:
    """The run whose generator weights ``name`` samples: itself, or the reference run for a sampling variant."""
    found = find_run(name)
    if found:
        sweep, entry, seed = found
        if entry in (_sweep(params, sweep).get("sampling_variants") or {}):
            return run_name(_sweep(params, sweep)["reference"], seed, sweep)
    return name


def _declared_run(params: Mapping[str, Any], name: str) -> tuple[str, str, int, str] | None:
    """(sweep, entry, seed, the trained entry whose weights it uses) of a declared run ``name``; None otherwise."""
    found = find_run(name)
    if found is None:
        return None
    sweep, entry, seed = found
    sw = _sweep(params, sweep)
    sampling = sw.get("sampling_variants") or {}
    if seed not in (sw.get("seeds") or []) or (entry not in entries(params, sweep) and entry not in sampling):
        return None
    return sweep, entry, seed, (sw["reference"] if entry in sampling else entry)


def run_overrides(params: Mapping[str, Any], section: str, name: str) -> dict[str, Any] | None:
    """The dotted overrides of ``section`` ("tokenizer" | "generator") that make sweep run ``name``, or None if
    ``name`` is not a declared run. Order: the sweep's common overrides, the entry's, then the seed (and, for the
    generator, the run's own tokenizer and the sweep's generator mode)."""
    run = _declared_run(params, name)
    if run is None:
        return None
    sweep, entry, seed, source = run
    sw = _sweep(params, sweep)
    trained, sampling = entries(params, sweep), sw.get("sampling_variants") or {}
    out = {**((sw.get("common") or {}).get(section) or {}), **((trained[source] or {}).get(section) or {}),
           "seed": seed}
    if section == "generator":
        out.update({"tokenizer": run_name(source, seed, sweep), "mode": sw.get("mode", "class"), "sampling.seed": seed})
        out.update({f"sampling.{k}": v for k, v in (sampling.get(entry) or {}).items()})
    return out


def run_override_keys(params: Mapping[str, Any], section: str, name: str) -> list[str] | None:
    """The params key paths :func:`run_overrides` reads for run ``name`` (what DVC must track for it): the sweep's
    ``common`` and the trained entry, for a sampling run also ``reference`` and its own ``sampling_variants`` entry,
    for the generator the sweep's ``mode``. None if ``name`` is not a declared run."""
    run = _declared_run(params, name)
    if run is None:
        return None
    sweep, entry, _seed, source = run
    sw = _sweep(params, sweep)
    keys = [f"{sweep}.common"] if "common" in sw else []
    keys.append(f"{sweep}.{SWEEPS[sweep]}.{source}")
    if source != entry:
        keys += [f"{sweep}.reference", f"{sweep}.sampling_variants.{entry}"]
    if section == "generator" and "mode" in sw:
        keys.append(f"{sweep}.mode")
    return keys
