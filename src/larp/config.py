"""Parameters: load ``params.yaml`` (plus override files), validate, resolve named variants.

``params.yaml`` is the single source of truth. Snakemake loads it with ``configfile:`` (and merges any
``--configfile`` on top); every stage script receives the same list of files with ``--params`` and merges them the
same way (dicts merge recursively, everything else is replaced), so both tools and a hand-run script see identical
values. The JSON schema in ``larp/schemas/params.schema.yaml`` is checked before any stage runs: an unknown key, a
wrong type or an out-of-range value stops with a message naming the key path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError
from .sweeps import SWEEP, SWEEPS, run_overrides, sampling_runs, trained_runs

SCHEMA_RESOURCE = "schemas/params.schema.yaml"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("larp").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (Snakemake's ``update_config`` semantics): dicts merge, other values replace.

    Kept by hand on purpose: the stage scripts must merge --params files exactly as Snakemake merges --configfile
    (OmegaConf or mergedeep differ on lists and None, and would be one more dependency for eight lines)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"parameter file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must hold a mapping at the top level, found {type(data).__name__}")
    return data


def _fmt_path(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _allowed(error: Any) -> str:
    """Say what is allowed for the failed schema keyword, in words."""
    v, kw = error.validator_value, error.validator
    return {
        "type": f"a value of type {v}",
        "enum": f"one of {v}",
        "minimum": f"a number >= {v}",
        "maximum": f"a number <= {v}",
        "exclusiveMinimum": f"a number > {v}",
        "exclusiveMaximum": f"a number < {v}",
        "minItems": f"at least {v} item(s)",
        "maxItems": f"at most {v} item(s)",
        "required": f"the keys {v}",
        "pattern": f"a string matching {v!r}",
        "minLength": f"a string of length >= {v}",
    }.get(kw, f"{kw}: {v}")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def validate_params(params: Mapping[str, Any], source: str = "params") -> None:
    """Raise :class:`ParamsError` listing every schema violation (key path, bad value, what is allowed)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for err in sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path))):
        path = _fmt_path(err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            allowed = sorted(err.schema.get("properties", {}))
            for key in extra:
                where = f"{path}.{key}" if err.absolute_path else key
                problems.append(f"{where}: unknown key; allowed keys here are {allowed}")
        elif err.validator == "required":
            why = f"; {err.schema['description']}" if err.schema.get("description") else ""
            problems.append(f"{path}: {err.message}{why}")
        else:
            hint = ""
            if isinstance(err.instance, str) and err.validator == "type" and _looks_numeric(err.instance):
                hint = " (write floats as 1.0e-4: YAML 1.1, which Snakemake uses, reads 1e-4 as a string)"
            elif err.validator == "pattern" and err.schema.get("description"):
                hint = f": {err.schema['description']}"
            problems.append(f"{path} = {err.instance!r} is invalid: expected {_allowed(err)}{hint}")
    problems.extend(_cross_checks(params))
    if not problems:  # shapes only of otherwise valid parameters (the models need every key)
        problems.extend(_shape_checks(params))
    if problems:
        raise ParamsError(f"{source}: {len(problems)} invalid parameter(s):\n  - " + "\n  - ".join(problems))


def _cross_checks(params: Mapping[str, Any]) -> list[str]:
    """Checks that span keys (the schema handles single values)."""
    out = []
    datasets = params.get("datasets", {}) or {}
    tok = params.get("tokenizer", {}) or {}
    for name in tok.get("train_datasets", []) or []:
        if name not in datasets:
            out.append(f"tokenizer.train_datasets names dataset {name!r}, which is not declared under datasets: "
                       f"{sorted(datasets)}")
    if tok.get("val_dataset") and tok["val_dataset"] not in datasets:
        out.append(f"tokenizer.val_dataset = {tok['val_dataset']!r} is not declared under datasets: {sorted(datasets)}")
    for variants_key, section in VARIANT_SECTIONS.items():
        if not isinstance(params.get(section), Mapping):
            continue
        for name, overrides in (params.get(variants_key) or {}).items():
            _, problems = _apply_overrides(params[section], overrides or {}, section, f"{variants_key}.{name}")
            out.extend(problems)
    out.extend(_generator_checks(params))
    out.extend(_sweep_checks(params))
    out.extend(_analysis_checks(params))
    return out


def _synthetic_chunk_pool(params: Mapping[str, Any], ds: Mapping[str, Any], split: str) -> int | None:
    """Size of the non-overlapping chunk pool (larp.data.clips.chunk_pool) of a synthetic split, from params alone;
    None for datasets whose videos are only known after extraction."""
    from .data.counts import chunks_per_video, tested_groups

    syn, clips = params["synthetic"], params["clips"]
    if ds["kind"] != "synthetic":
        return None
    tested = len(tested_groups(int(ds["split"]), int(syn["groups"])))
    groups = tested if split == "test" else int(syn["groups"]) - tested
    stored = -(-int(syn["frames"]) // int(clips["stride"]))
    if clips["max_frames_per_video"] is not None:
        stored = min(stored, int(clips["max_frames_per_video"]))
    per_video = chunks_per_video(stored, int(clips["frames"]))
    return int(syn["num_classes"]) * groups * int(syn["clips_per_group"]) * per_video


def _shape_checks(params: Mapping[str, Any]) -> list[str]:
    """Every shape rule a model or stage enforces, checked before any stage runs by building each variant's
    configuration with the code that enforces it (TokenizerConfig / check_vit_shape, the prior, the discriminator,
    GeneratorConfig, the frame-prediction context), so a rule has one definition. Those live in torch-free modules
    (larp.tokenizer.config / presets, larp.generator.config / presets): a Snakemake parse never imports torch."""
    from .generator.presets import get_preset
    from .tokenizer.config import DiscriminatorConfig, check_context
    from .tokenizer.presets import build_config

    out, clips = [], params["clips"]
    where = ("(keys clips.frames, clips.resolution, tokenizer.preset, tokenizer.model.*, tokenizer.use_prior, "
             "tokenizer.prior.*, tokenizer.discriminator.*)")
    base_model = params["tokenizer"]["model"]
    tok_cfgs = {}
    for name in sorted(params.get("tokenizers") or {}) + [r for sw in SWEEPS for r in trained_runs(params, sw)]:
        section = variant_section(params, "tokenizer", "tokenizers", name)
        try:
            cfg = build_config(section, clips)
            if section["loss"]["gan_weight"] > 0:
                DiscriminatorConfig(frames=cfg.frames, resolution=cfg.resolution, patch_t=cfg.patch_t,
                                    patch_s=cfg.patch_s, **section["discriminator"])
        except (ValueError, TypeError) as exc:
            out.append(f"tokenizers.{name}: {exc} {where}")
            continue
        tok_cfgs[name] = cfg
        # a num_tokens given for a patchwise configuration (its own override, or a patchwise base section) would be
        # silently ignored; one inherited from a holistic base section is not meant for it (README, Parameters)
        overrides = (params.get("tokenizers") or {}).get(name) or run_overrides(params, "tokenizer", name) or {}
        explicit = "model.num_tokens" in overrides or "num_tokens" in (overrides.get("model") or {}) or (
            base_model.get("kind") == "patchwise" and "num_tokens" in base_model)
        given = section["model"].get("num_tokens")
        if cfg.kind == "patchwise" and explicit and given != cfg.num_patches:
            out.append(f"tokenizers.{name}: model.num_tokens = {given} is ignored by a patchwise tokenizer, whose tokens "
                       f"are its {cfg.num_patches} patches (clips.frames / patch_t x (clips.resolution / patch_s)^2); "
                       f"set tokenizer.model.num_tokens: {cfg.num_patches} for it or choose the patch sizes")
    try:
        check_context(int(params["tokens"]["fp_context_frames"]), int(clips["frames"]))
    except ValueError as exc:
        out.append(f"tokens.fp_context_frames: {exc} (clips.frames = {clips['frames']})")
    gens = sorted(params.get("generators") or {}) + [r for sw in SWEEPS for r in trained_runs(params, sw)
                                                     + sampling_runs(params, sw)]
    for name in gens:
        section = variant_section(params, "generator", "generators", name)
        tok = tok_cfgs.get(section["tokenizer"]) or tok_cfgs.get(name)
        if tok is not None:
            try:
                get_preset(section["preset"], **dict(section["model"]), mode=section["mode"],
                           vocab_size=tok.codebook_size, num_tokens=tok.num_latents, num_classes=2)
            except (ValueError, TypeError) as exc:
                out.append(f"generators.{name}: {exc} (keys generator.preset, generator.model.*)")
        split = "train" if section["mode"] == "class" else "test"
        ds = (params.get("datasets") or {}).get(section["dataset"])
        pool = _synthetic_chunk_pool(params, ds, split) if ds else None
        n = section["sampling"]["num_videos"]
        if pool is not None and n > pool:
            out.append(f"generators.{name}: generator.sampling.num_videos = {n} but the {clips['frames']}-frame chunk "
                       f"pool of {section['dataset']}/{split} holds {pool} clips (synthetic.*, clips.frames); set "
                       f"num_videos <= {pool}")
    det = params.get("detector") or {}
    if det.get("kind") == "i3d" and not det.get("i3d_path"):
        out.append("detector.kind is i3d but detector.i3d_path is null; fetch the file once (python -c \"from "
                   "larp.metrics.detectors import fetch_i3d; fetch_i3d('data/i3d')\", README FVD detectors) and set "
                   "detector.i3d_path: data/i3d/i3d_torchscript.pt, or use detector.kind: classifier")
    return out


def _sweep_checks(params: Mapping[str, Any]) -> list[str]:
    """Every sweep (larp.sweeps.SWEEPS): its own checks, names of declared variants do not clash with its runs, and
    every run's overrides give valid sections."""
    if not all(isinstance(params.get(k), Mapping) for k in ("tokenizer", "generator")):
        return []
    out = []
    for sweep in SWEEPS:
        sw = params.get(sweep)
        if not isinstance(sw, Mapping):
            continue
        problems = _SWEEP_CHECKS[sweep](sw)
        for key in VARIANT_SECTIONS:
            for name in params.get(key) or {}:
                if str(name).startswith(f"{sweep}-"):
                    problems.append(f"{key}.{name}: names starting with '{sweep}-' are reserved for the {sweep} "
                                    "sweep runs")
        if problems:
            out.extend(problems)
            continue
        for run in trained_runs(params, sweep) + sampling_runs(params, sweep):
            for section in ("tokenizer", "generator"):
                _, found = _apply_overrides(params[section], run_overrides(params, section, run) or {}, section,
                                            f"{sweep} run {run}")
                out.extend(found)
    return out


def _table2_checks(sw: Mapping[str, Any]) -> list[str]:
    """table2: the reference is a variant and no name is both a variant and a sampling variant."""
    variants, sampling = sw.get("variants") or {}, sw.get("sampling_variants") or {}
    if sw.get("reference") not in variants:
        return [f"{SWEEP}.reference = {sw.get('reference')!r} is not one of {SWEEP}.variants: {sorted(variants)}"]
    both = sorted(set(variants) & set(sampling))
    return [f"{SWEEP}: {name!r} is both a variant and a sampling variant" for name in both]


def _scaling_checks(sw: Mapping[str, Any]) -> list[str]:
    """scaling: every figure's series lists declared points, each at most once."""
    out, points = [], sorted(sw.get("points") or {})
    for fig, spec in (sw.get("figures") or {}).items():
        for label, names in ((spec or {}).get("series") or {}).items():
            where = f"scaling.figures.{fig}.series.{label}"
            for name in names or []:
                if name not in points:
                    out.append(f"{where}: {name!r} is not a declared point; expected one of scaling.points {points}")
            for name in sorted({n for n in names or [] if list(names).count(n) > 1}):
                out.append(f"{where}: point {name!r} is listed more than once")
    return out


_SWEEP_CHECKS = {"table2": _table2_checks, "scaling": _scaling_checks}  # each sweep's own checks (SWEEPS)


def _analysis_checks(params: Mapping[str, Any]) -> list[str]:
    """analysis: compared sweep variants exist (and train), analysed tokenizers are declared, levels divide the clip."""
    a, sw = params.get("analysis"), params.get(SWEEP)
    if not isinstance(a, Mapping) or not isinstance(sw, Mapping):
        return []
    out = []
    variants, declared = sw.get("variants") or {}, sorted(params.get("tokenizers") or {})
    ngrams, claims, importance, redundancy = (a.get(k) or {} for k in ("ngrams", "claims", "importance", "redundancy"))
    named = [(f"analysis.ngrams.compare.{k}", v) for k, v in (ngrams.get("compare") or {}).items()]
    named += [("analysis.claims.no_prior_variant", claims["no_prior_variant"])] if "no_prior_variant" in claims else []
    for where, v in named:
        if v not in variants:
            out.append(f"{where} = {v!r} is not a trained {SWEEP} variant; expected one of {sorted(variants)}")
    analysed = [("analysis.importance.tokenizer", importance["tokenizer"])] if "tokenizer" in importance else []
    analysed += [("analysis.redundancy.tokenizers", t) for t in redundancy.get("tokenizers") or []]
    for where, v in analysed:
        if v not in declared:
            out.append(f"{where}: {v!r} is not a declared tokenizer variant; expected one of {declared}")
    frames = (params.get("clips") or {}).get("frames")
    for level in redundancy.get("levels") or []:
        if isinstance(frames, int) and isinstance(level, int) and frames % level:
            out.append(f"analysis.redundancy.levels: {level} does not divide clips.frames = {frames}")
    return out


# variant collections and the section their dotted overrides apply to
VARIANT_SECTIONS = {"tokenizers": "tokenizer", "generators": "generator"}


def _generator_checks(params: Mapping[str, Any]) -> list[str]:
    """generator.tokenizer names a declared tokenizer variant and generator.dataset a declared dataset, in the
    base section and in every variant that overrides them."""
    gen = params.get("generator")
    if not isinstance(gen, Mapping):
        return []
    out = []
    declared = {"tokenizer": sorted(params.get("tokenizers") or {}), "dataset": sorted(params.get("datasets") or {})}
    for name, overrides in {None: dict(gen), **(params.get("generators") or {})}.items():
        for key, names in declared.items():
            if key in (overrides or {}) and overrides[key] not in names:
                where = "generator" if name is None else f"generators.{name}"
                out.append(f"{where}: {key} = {overrides[key]!r} is not declared under "
                           f"{'tokenizers' if key == 'tokenizer' else 'datasets'}: {names}")
    return out


def _apply_overrides(section: Mapping[str, Any], overrides: Mapping[str, Any], section_name: str,
                     where: str) -> tuple[dict[str, Any], list[str]]:
    """Apply dotted overrides to a copy of ``section``; return it with the problems found (unknown keys, bad values)."""
    import jsonschema

    out = copy.deepcopy(dict(section))
    problems = []
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        parent: Any = out
        for p in parts[:-1]:
            parent = parent.get(p) if isinstance(parent, Mapping) else None
        if not isinstance(parent, Mapping):
            problems.append(f"{where}: override key {dotted!r} does not lead into a mapping under {section_name}")
            continue
        set_dotted(out, dotted, value)
    sub = dict(schema()["properties"][section_name], **{"$defs": schema()["$defs"]})
    validator = jsonschema.Draft202012Validator(sub)
    # report only what the overrides introduced: the base section's own problems are reported once, elsewhere
    base = {(tuple(e.absolute_path), e.message) for e in validator.iter_errors(dict(section))}
    for err in validator.iter_errors(out):
        if (tuple(err.absolute_path), err.message) in base:
            continue
        path = ".".join([section_name, *map(str, err.absolute_path)])
        problems.append(f"{where}: after its overrides, {path}: {err.message}")
    return out, problems


def load_params(paths: Sequence[str | os.PathLike] | str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read, merge in order, and validate parameter files. Raises :class:`ParamsError`."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ParamsError("no parameter file given")
    merged: dict[str, Any] = {}
    for p in paths:
        merged = deep_merge(merged, read_yaml(p))
    validate_params(merged, source=" + ".join(str(p) for p in paths))
    return merged


def set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = copy.deepcopy(value)


def variant_section(params: Mapping[str, Any], section: str, variants_key: str, name: str) -> dict[str, Any]:
    """The ``section`` dict with the overrides of variant ``name`` (from ``params[variants_key]``) applied.

    Overrides are dotted keys relative to the section, e.g. ``tokenizers: {patchwise: {model.kind: patchwise}}``.
    The result is validated against the section's schema, so an override can't smuggle in a bad value.
    """
    # sweep runs (<sweep>-<entry>-s<seed>) resolve like declared ones. `in params.keys()`: a stage view (larp.reads)
    # that declares the sweep but not the variants section resolves its runs without reading the latter (plain `in`
    # on a view refuses an undeclared section)
    variants = (params[variants_key] if variants_key in params.keys() else None) or {}
    overrides = variants.get(name) if name in variants else run_overrides(params, section, name)
    if overrides is None:
        raise ParamsError(f"{variants_key}: no variant named {name!r}; declared variants are {sorted(variants)} "
                          f"(and the sweep runs <sweep>-<entry>-s<seed> of {sorted(SWEEPS)})")
    out, problems = _apply_overrides(params[section], overrides or {}, section, f"{variants_key}.{name}")
    if problems:
        raise ParamsError("\n  - ".join(["invalid variant:"] + problems))
    return out
