"""Typed training settings (TokenizerTraining, GeneratorTraining): built from every resolved params section, a
missing key named, frozen, and every key of the schema's sections owned by a field or declared as someone else's."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from larp.config import load_params, schema, variant_section
from larp.generator.config import GENERATOR_OTHER_KEYS, GeneratorTraining
from larp.sweeps import all_trained_runs
from larp.dictconfig import dataclass_from_section
from larp.tokenizer.config import TOKENIZER_OTHER_KEYS, DiscriminatorSize, TokenizerLoss, TokenizerTraining

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params([ROOT / "params.yaml"])
# (section, variants key, typed class, keys of the section the class does not own)
SECTIONS = {"tokenizer": ("tokenizers", TokenizerTraining, TOKENIZER_OTHER_KEYS),
            "generator": ("generators", GeneratorTraining, GENERATOR_OTHER_KEYS)}


def _names(section: str) -> list[str]:
    """The declared variants of ``section`` and the runs of every sweep (they resolve the same way)."""
    return sorted(PARAMS[SECTIONS[section][0]]) + all_trained_runs(PARAMS)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _assert_matches(typed, section: dict) -> None:
    """Every field of ``typed`` equals the section's value (nested dataclasses: their sub-section), with its type."""
    for f in dataclasses.fields(typed):
        value, expected = getattr(typed, f.name), section[f.name]
        if dataclasses.is_dataclass(value):
            _assert_matches(value, expected)
        elif isinstance(value, tuple):
            assert value == tuple(expected) and all(isinstance(v, float) for v in value), f.name
        else:
            assert value == expected, f"{f.name}: {value!r} != {expected!r}"
            kind = {"int": int, "float": float}.get(f.type, type(expected))  # others: the section's value as it is
            assert type(value) is kind, f"{f.name}: {value!r} is not a {kind.__name__}"


@pytest.mark.parametrize("name", _names("tokenizer"))
def test_tokenizer_training_takes_the_values_of_every_resolved_section(name):
    section = variant_section(PARAMS, "tokenizer", "tokenizers", name)
    training = TokenizerTraining.from_section(section)
    _assert_matches(training, section)
    assert isinstance(training.loss, TokenizerLoss) and isinstance(training.discriminator, DiscriminatorSize)


@pytest.mark.parametrize("name", _names("generator"))
def test_generator_training_takes_the_values_of_every_resolved_section(name):
    section = variant_section(PARAMS, "generator", "generators", name)
    training = GeneratorTraining.from_section(section)
    _assert_matches(training, section)


def test_from_section_converts_numbers_and_betas():
    """An integer lr (valid for the schema's `number`) becomes a float; the betas list a tuple of floats."""
    section = variant_section(PARAMS, "generator", "generators", "class-larp") | {"lr": 1, "betas": [0, 0.5]}
    training = GeneratorTraining.from_section(section)
    assert type(training.lr) is float and training.lr == 1.0
    assert training.betas == (0.0, 0.5) and all(type(b) is float for b in training.betas)


@pytest.mark.parametrize("section_name, path", [
    ("tokenizer", "prior_ramp_frac"), ("tokenizer", "steps"), ("tokenizer", "loss"), ("tokenizer", "loss.gan_weight"),
    ("tokenizer", "discriminator.heads"), ("generator", "weight_decay"), ("generator", "cpu_bf16")])
def test_a_missing_key_is_named(section_name, path):
    variants, cls, _ = SECTIONS[section_name]
    section = copy.deepcopy(variant_section(PARAMS, section_name, variants, next(iter(PARAMS[variants]))))
    *parents, key = path.split(".")
    owner = section
    for p in parents:
        owner = owner[p]
    del owner[key]
    where = ".".join([section_name, *parents])
    with pytest.raises(ValueError, match=rf"^{where}: missing key '{key}'"):
        cls.from_section(section)


def test_a_sub_section_that_is_not_a_mapping_is_refused():
    section = copy.deepcopy(variant_section(PARAMS, "tokenizer", "tokenizers", "larp")) | {"loss": 0.5}
    with pytest.raises(ValueError, match=r"^tokenizer.loss: expected a mapping of TokenizerLoss settings"):
        TokenizerTraining.from_section(section)


@pytest.mark.parametrize("section_name, attribute", [
    ("tokenizer", "lr"), ("tokenizer", "loss.gan_weight"), ("tokenizer", "discriminator.width"),
    ("generator", "steps")])
def test_training_settings_are_frozen(section_name, attribute):
    variants, cls, _ = SECTIONS[section_name]
    owner = cls.from_section(variant_section(PARAMS, section_name, variants, next(iter(PARAMS[variants]))))
    *parents, name = attribute.split(".")
    for p in parents:
        owner = getattr(owner, p)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(owner, name, 0)
    hash(owner)  # frozen, with hashable values (betas a tuple)


@pytest.mark.parametrize("section_name", SECTIONS)
def test_every_schema_key_is_a_field_or_declared_not_owned(section_name):
    """A training key added to the schema must get a field of the typed settings (or be declared as read elsewhere in
    the section's *_OTHER_KEYS): otherwise training would never see it."""
    _, cls, other = SECTIONS[section_name]
    keys = set(schema()["properties"][section_name]["properties"])
    fields = _field_names(cls)
    assert not fields & set(other), "a key is both a field and declared not owned"
    assert keys - fields - set(other) == set(), "schema keys neither a field nor declared not owned"
    assert fields | set(other) == keys, "a field or a declared key that the schema does not have"


@pytest.mark.parametrize("sub, cls", [("loss", TokenizerLoss), ("discriminator", DiscriminatorSize)])
def test_every_schema_key_of_a_tokenizer_sub_section_is_a_field(sub, cls):
    assert set(schema()["properties"]["tokenizer"]["properties"][sub]["properties"]) == _field_names(cls)


def test_dataclass_from_section_ignores_keys_it_does_not_own():
    @dataclasses.dataclass(frozen=True)
    class Pair:
        a: int
        b: float

    assert dataclass_from_section(Pair, {"a": 2, "b": 3, "c": "x"}, "pair") == Pair(a=2, b=3.0)


def test_typed_settings_import_no_torch():
    code = ("import sys, larp.config, larp.tokenizer.config, larp.generator.config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
