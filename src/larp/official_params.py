"""The ``official`` parameter section (the released checkpoints to import): its entries, as the Snakefile reads them.

Importable without torch (the import_official rule and ``reproduce_official`` read it at every Snakemake parse);
the weight conversion is larp.official and the stage larp.stages.official.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import StageError


def official_entry(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``official.<name>`` as a dict; :class:`~larp.errors.StageError` for an undeclared name."""
    entries = params.get("official") or {}
    if name not in entries:
        raise StageError(f"official: no entry named {name!r}; declared imports are {sorted(entries)}")
    return dict(entries[name])


def official_entry_json(params: Mapping[str, Any], name: str, kind: str) -> str:
    """``official.<name>`` as canonical JSON (the import rule's tracked param); refuses a name of another kind."""
    entry = official_entry(params, name)
    if entry["kind"] != kind:
        raise StageError(f"official.{name} is a {entry['kind']}, not a {kind}")
    return json.dumps(entry, sort_keys=True)


def official_targets(params: Mapping[str, Any]) -> list[str]:
    """What ``reproduce_official`` builds: each import, the imported tokenizers' tokens and rFVD, and the imported
    generators' samples and gFVD / frame-prediction FVD."""
    entries = params.get("official") or {}
    if not entries:
        raise StageError("reproduce_official: params declare no `official` checkpoints; add "
                         "--configfile workflow/configs/official.yaml")
    out = []
    for name, entry in sorted(entries.items()):
        if entry["kind"] == "tokenizer":
            out += [f"results/tokenizer/{name}", f"results/tokens/{name}", f"results/eval/tokenizer/{name}.json"]
        else:
            out += [f"results/generator/{name}", f"results/samples/{name}", f"results/eval/generator/{name}.json"]
    return out
