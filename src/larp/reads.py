"""What a stage may read of params: the sections its rule declares, as one list both workflow tools use.

Each Snakemake rule names the parameter sections its stage reads (``reads(...)`` in workflow/rules/common.smk) and
passes them to its script as ``--reads``. From that one list:

- the script sees only those sections (:func:`stage_view`): a stage that reads an undeclared section stops with a
  :class:`~larp.errors.ParamsError` naming it, so the declaration cannot fall behind the code;
- Snakemake tracks their values (:func:`tracked_json`, a rule param, so a change re-runs exactly that stage);
- the generated dvc.yaml lists their key paths (:func:`dvc_keys`; workflow/tools/dag.py ``--write-dvc``).

A declared name is one of (torch-free, so parsing the workflow stays fast):

``SECTION``                    the whole top-level section (``run``, ``clips``, ``tokenizers`` ...)
``SECTION.KEY``                one key of a section (``datasets.ucf101``, ``analysis.ngrams``, ``official.<name>``)
``tokenizer:variant``          the ``tokenizer`` section resolved for the stage's ``--variant`` (a declared variant
                               or a sweep run)
``generator:variant``          the same for ``generator``
``generator:variant:training`` the resolved ``generator`` without ``sampling`` (what training uses: a sampling
                               change does not retrain)

``tracking`` (MLflow's experiment names and URI) is visible to every stage and tracked by neither tool: it says where
results are logged, not what they are.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ParamsError
from .sweeps import run_override_keys

ALWAYS = ("tracking",)
VARIANT_KINDS = {"tokenizer": "tokenizers", "generator": "generators"}
_QUALIFIERS = {"training"}


class StageParams(dict):
    """Params as a stage sees them: a dict holding only the declared sections (so JSON and ``dict()`` see plain
    values). Reading any other key that params has raises :class:`ParamsError` naming it (``get`` too); keys params
    does not have at all behave as absent. Nested sections come back wrapped the same way. The key paths looked up
    are recorded, so :meth:`unread` can name a declared section the stage never used."""

    def __init__(self, data: Mapping[str, Any], full: Mapping[str, Any], declared: Sequence[str], where: str = "",
                 used: set[str] | None = None):
        super().__init__(data)
        self._full, self._declared, self._where = full, tuple(declared), where
        self._used = set() if used is None else used  # shared with the nested views

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            self._used.add(f"{self._where}{key}")
            value = dict.__getitem__(self, key)
            if isinstance(value, dict) and not isinstance(value, StageParams) and isinstance(self._full.get(key), Mapping):
                return StageParams(value, self._full[key], self._declared, f"{self._where}{key}.", self._used)
            return value
        if key in self._full:
            raise self._undeclared(key)
        raise KeyError(key)

    def _undeclared(self, key: str) -> ParamsError:
        return ParamsError(
            f"this stage reads params `{self._where}{key}`, which its declaration does not list "
            f"(--reads {' '.join(self._declared)}); add it to the rule's reads(...) in workflow/rules/ and "
            "regenerate dvc.yaml (python workflow/tools/dag.py --write-dvc)")

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if dict.__contains__(self, key) or key in self._full else default

    def __contains__(self, key: object) -> bool:
        """``key in view`` asks about params, so an undeclared key params has is refused like a look-up (it would
        otherwise answer False and the stage would act as if params had no such key)."""
        if dict.__contains__(self, key):
            self._used.add(f"{self._where}{key}")
            return True
        if key in self._full:
            raise self._undeclared(key)
        return False

    def to_dict(self) -> dict[str, Any]:
        """A plain deep copy of what the stage sees (for logging)."""
        return copy.deepcopy(dict(self))

    def unread(self) -> list[str]:
        """The declared names whose section the stage never looked up: declared for nothing, they re-run the stage
        when a value it ignores changes (the stage tests require none)."""
        def looked_up(section: str) -> bool:
            return any(u == section or u.startswith(section + ".") or section.startswith(u + ".") for u in self._used)

        out = []
        for name in self._declared:
            kind, var, _ = parse(name)
            if not any(looked_up(s) for s in ((kind, VARIANT_KINDS[kind]) if var else (kind,))):
                out.append(name)
        return out


def parse(name: str) -> tuple[str, str | None, str | None]:
    """``"generator:variant:training"`` -> ("generator", "variant", "training"); ``"datasets.x"`` -> ("datasets.x",
    None, None). Raises ParamsError for a malformed name."""
    parts = name.split(":")
    if len(parts) == 1:
        if not parts[0] or any(not p for p in parts[0].split(".")):
            raise ParamsError(f"--reads: {name!r} is not a section name")
        return parts[0], None, None
    if parts[0] not in VARIANT_KINDS or parts[1] != "variant" or len(parts) > 3 or (
            len(parts) == 3 and (parts[0] != "generator" or parts[2] not in _QUALIFIERS)):
        raise ParamsError(f"--reads: {name!r}; variant sections are tokenizer:variant, generator:variant and "
                          "generator:variant:training")
    return parts[0], "variant", parts[2] if len(parts) == 3 else None


def _optional_section(head: str) -> bool:
    """``head`` is a top-level section the params schema knows but does not require (``official``)."""
    from .config import schema

    s = schema()
    return head in s.get("properties", {}) and head not in s.get("required", [])


def _needs_variant(declared: Sequence[str], variant: str | None) -> None:
    if variant is None and any(parse(d)[1] for d in declared):
        raise ParamsError(f"--reads {' '.join(declared)} names a variant section but the stage has no --variant")


def resolved_variant(params: Mapping[str, Any], kind: str, variant: str, qualifier: str | None = None) -> dict:
    """The ``kind`` section resolved for ``variant`` (:func:`larp.config.variant_section`), without ``sampling``
    for the ``training`` qualifier."""
    from .config import variant_section  # jsonschema: imported on use

    out = variant_section(params, kind, VARIANT_KINDS[kind], variant)
    if qualifier == "training":
        out.pop("sampling", None)
    return out


def stage_view(params: Mapping[str, Any], declared: Sequence[str], variant: str | None = None) -> StageParams:
    """What a stage declaring ``declared`` (for ``--variant variant``) sees of ``params``.

    A variant section arrives resolved: ``view[kind]`` is the variant's section and ``view[kind + 's']`` holds the
    variant with no overrides, so :func:`larp.config.variant_section` (which stages call) returns it unchanged."""
    _needs_variant(declared, variant)
    data: dict[str, Any] = {k: copy.deepcopy(params[k]) for k in ALWAYS if k in params}
    for name in declared:
        kind, var, qualifier = parse(name)
        if var:
            if kind in data or VARIANT_KINDS[kind] in data:
                raise ParamsError(f"--reads {' '.join(declared)}: {name} and another declaration both give `{kind}`")
            data[kind] = resolved_variant(params, kind, variant, qualifier)
            data[VARIANT_KINDS[kind]] = {variant: {}}
            continue
        head, *rest = kind.split(".")
        if head not in params:
            if _optional_section(head):  # an optional section left out: the stage sees it absent
                continue
            raise ParamsError(f"--reads {name}: params has no section `{head}`")
        src, dst = params[head], data
        if not rest:
            data[head] = copy.deepcopy(src)
            continue
        dst = data.setdefault(head, {})
        for i, key in enumerate(rest):
            if not isinstance(src, Mapping) or key not in src:
                where = ".".join([head, *rest[:i]])
                known = f"; declared are {sorted(src)}" if isinstance(src, Mapping) else ""
                raise ParamsError(f"--reads {name}: {key!r} is not declared in params `{where}`{known}")
            src = src[key]
            if i == len(rest) - 1:
                dst[key] = copy.deepcopy(src)
            else:
                dst = dst.setdefault(key, {})
    return StageParams(data, params, declared)


def tracked_json(params: Mapping[str, Any], declared: Sequence[str], variant: str | None = None) -> str:
    """The declared sections' values as canonical JSON: the value Snakemake tracks for the rule (``tracking``
    excluded)."""
    view = stage_view(params, declared, variant)
    return json.dumps({k: v for k, v in view.to_dict().items() if k not in ALWAYS}, sort_keys=True)


def variant_keys(params: Mapping[str, Any], kind: str, variant: str) -> list[str]:
    """The params key paths a variant's overrides come from: ``<kind>s.<variant>`` for a declared variant; for a
    sweep run the sweep's ``common`` and entry (a sampling run: also the reference entry it re-samples and
    ``reference``), and for the generator the sweep's ``mode``."""
    if variant in (params.get(VARIANT_KINDS[kind]) or {}):
        return [f"{VARIANT_KINDS[kind]}.{variant}"]
    keys = run_override_keys(params, kind, variant)
    if keys is None:
        raise ParamsError(f"{VARIANT_KINDS[kind]}: no variant named {variant!r}")
    return keys


def dvc_keys(params: Mapping[str, Any], declared: Sequence[str], variant: str | None = None) -> list[str]:
    """The params key paths DVC tracks for the declaration (DVC tracks whole keys: ``generator:variant:training``
    becomes every key of ``generator`` but ``sampling``)."""
    _needs_variant(declared, variant)
    keys: list[str] = []
    for name in declared:
        kind, var, qualifier = parse(name)
        if not var:
            if kind.split(".")[0] in params or not _optional_section(kind.split(".")[0]):
                keys.append(kind)
            continue
        if qualifier == "training":
            keys += [f"generator.{k}" for k in params["generator"] if k != "sampling"]
        else:
            keys.append(kind)
        keys += variant_keys(params, kind, variant)
    return list(dict.fromkeys(keys))
