"""Configuration dataclasses to and from plain dicts: one definition for every configuration the pipeline stores or
reads (torch-free, like the configurations themselves).

- :class:`DictIO` gives a model configuration ``to_dict`` / ``from_dict``, the form embedded in a weight file
  (larp.io.save_weights): ``from_dict`` refuses unknown keys, so a file written by another version fails loudly
  instead of silently dropping a setting, and rebuilds nested configuration dataclasses (``TokenizerConfig.prior``).
- :func:`dataclass_from_section` builds a typed view of a validated params section (``TokenizerTraining``,
  ``GeneratorTraining``), taking only the keys named as its fields.

Written by hand: both need only the dataclass field types, and the libraries that do this (dacite, pydantic) check
types more strictly than JSON round trips allow (an int stored for a float field).
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, fields, is_dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field's type names, alone or in a union with None (``PriorConfig | None``)."""
    if is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(hint) if is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


class DictIO:
    """``to_dict`` / ``from_dict`` for a configuration dataclass (mixed in: ``class X(DictIO)`` under @dataclass)."""

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (nested configurations as dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls: type[_T], d: Mapping[str, Any]) -> _T:
        """Inverse of :meth:`to_dict`; ValueError naming any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; expected a subset of {sorted(known)}")
        d = copy.deepcopy(dict(d))
        hints = typing.get_type_hints(cls)
        for name, value in d.items():
            sub = _dataclass_of(hints[name])
            if sub is not None and isinstance(value, Mapping):
                d[name] = sub.from_dict(value) if issubclass(sub, DictIO) else sub(**value)
        return cls(**d)


def dataclass_from_section(cls: type[_T], section: Mapping[str, Any], where: str) -> _T:
    """``cls`` (a dataclass) from the keys of ``section`` named as its fields; other keys are ignored.

    Fields typed int or float are converted to that type, tuples from lists, nested dataclasses built from their
    sub-sections; other values are taken as they are (the params schema has checked them). ``where`` names the
    section in the error raised for a missing key, e.g. ``tokenizer`` or ``tokenizer.loss``.
    """
    if not isinstance(section, Mapping):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} settings but found {section!r}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in section:
            raise ValueError(f"{where}: missing key {f.name!r} (needed by {cls.__name__}); expected keys "
                             f"{[g.name for g in fields(cls)]}")
        kind, value = hints[f.name], section[f.name]
        if is_dataclass(kind):
            value = dataclass_from_section(kind, value, f"{where}.{f.name}")
        elif kind in (int, float):
            value = kind(value)
        elif typing.get_origin(kind) is tuple:
            value = tuple(typing.get_args(kind)[0](v) for v in value)
        values[f.name] = value
    return cls(**values)


class SectionView:
    """A frozen dataclass that is the typed view of one params section (``SECTION`` names it): built once by
    :meth:`from_section` at a stage's boundary, read as attributes inside."""

    SECTION = ""  # a plain class attribute, not a dataclass field

    @classmethod
    def from_section(cls: type[_T], section: Mapping[str, Any]) -> _T:
        """The settings in a resolved ``SECTION`` section; ValueError naming a missing key."""
        return dataclass_from_section(cls, section, cls.SECTION)
