"""Stage function behind ``workflow/scripts/import_official.py``: one released checkpoint of the official code
(``official.<name>`` of params: a local folder or ``hf://owner/name``) converted by larp.official into this project's
weight format, checked to load back identically, and published atomically with its provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import StageError
from ..io import atomic_dir, save_weights, write_json
from ..official import convert_generator, convert_tokenizer, detect_kind, fetch_hf, provenance, read_source
from ..official_params import official_entry
from ..runtime import git_commit
from ..tracking import tracker_for


def run_import_official(params: Mapping[str, Any], name: str, *, out_dir: str | Path, metrics_path: str | Path,
                        cache_dir: str | Path = "work/official",
                        fetch: Callable[[str, str | None, str | Path], tuple[Path, str]] = fetch_hf) -> dict[str, Any]:
    """Import ``official.<name>`` of params: read, map, check, and publish ``out_dir`` (model.safetensors with our
    configuration and the provenance, config.json, provenance.json) and ``metrics_path``, atomically."""
    entry = official_entry(params, name)
    src = read_source(entry["source"], revision=entry.get("revision"), cache_dir=Path(cache_dir) / name, fetch=fetch)
    kind = detect_kind(src.config)
    if kind != entry["kind"]:
        raise StageError(f"official.{name}.kind is {entry['kind']!r} but {entry['source']} holds a {kind}")
    if kind == "tokenizer":
        from ..tokenizer.presets import count_parameters

        model, notes = convert_tokenizer(src)
        n_tok = count_parameters(model, include_prior=False)
        metrics = {"params_tokenizer": n_tok, "params_prior": count_parameters(model, include_prior=True) - n_tok,
                   "num_tokens": model.cfg.num_latents}
        prov = provenance(src, kind, notes)
        meta = {"model_config": model.cfg.to_dict(), "stage_config": None, "variant": name, "official": prov,
                "git_commit": git_commit(), "metrics": metrics}
    else:
        from ..generator.presets import count_parameters

        model, notes = convert_generator(src)
        cfg = model.config
        mode = cfg.mode
        for key in ("tokenizer", "dataset"):
            if not entry.get(key):
                raise StageError(f"official.{name}: a generator import names its `{key}` (the tokenizer variant "
                                 "whose tokens it models, the dataset it samples)")
        declared = (params.get("generators") or {})
        if name in declared:
            from ..config import variant_section

            section = variant_section(params, "generator", "generators", name)
            for key, value in (("mode", mode), ("tokenizer", entry["tokenizer"]), ("dataset", entry["dataset"])):
                if section[key] != value:
                    raise StageError(f"generators.{name}.{key} = {section[key]!r} but the import gives {value!r}")
            stage_config = {k: v for k, v in section.items() if k != "sampling"}
        else:
            stage_config = None
        metrics = {"params_generator": count_parameters(model)}
        prov = provenance(src, kind, notes)
        meta = {"model_config": cfg.to_dict(), "stage_config": stage_config, "variant": name, "mode": mode,
                "tokenizer": entry["tokenizer"], "dataset": entry["dataset"],
                "token_meta": {"num_tokens": cfg.num_tokens, "codebook_size": cfg.vocab_size,
                               "num_classes": cfg.num_classes,
                               "fp_context_frames": params["tokens"]["fp_context_frames"]},
                "official": prov, "git_commit": git_commit(), "metrics": metrics}
    metrics = {**metrics, "tensors_imported": len(src.state), "files": len(src.digests)}
    with tracker_for(params, stage="import_official", variant=name, study=kind,
                     resolved={"official": entry}) as tracker:
        with atomic_dir(out_dir) as tmp:
            save_weights(tmp / "model.safetensors", model.state_dict(), meta)
            write_json(tmp / "config.json", meta)
            write_json(tmp / "provenance.json", prov)
            _check_round_trip(tmp, kind, model)
        write_json(metrics_path, metrics)
        tracker.log_metrics(metrics)
    return metrics


def _check_round_trip(folder: Path, kind: str, model: torch.nn.Module) -> None:
    """The published file loads through the project's own loader into the same tensors (before it is published)."""
    if kind == "tokenizer":
        from ..models import load_tokenizer as load
    else:
        from ..models import load_generator as load
    loaded, _ = load(folder)
    theirs, ours = loaded.state_dict(), model.state_dict()
    bad = [k for k in ours if not torch.equal(theirs[k], ours[k])]
    if bad or set(theirs) != set(ours):
        raise StageError(f"the published {kind} does not load back identically: {bad[:5]}")
