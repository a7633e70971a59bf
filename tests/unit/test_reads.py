"""larp.reads: a stage sees only the sections its rule declares; Snakemake and DVC track exactly those."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from larp.config import load_params, variant_section
from larp.errors import ParamsError
from larp.reads import dvc_keys, parse, stage_view, tracked_json, variant_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def params():
    return load_params([ROOT / "params.yaml"])


def test_an_undeclared_section_is_refused_naming_it(params):
    view = stage_view(params, ["clips", "run"])
    assert view["clips"] == params["clips"] and view.get("run") == params["run"]
    with pytest.raises(ParamsError, match=r"reads params `tokenizer`, which its declaration does not list \(--reads clips run\)"):
        view["tokenizer"]
    with pytest.raises(ParamsError, match="`official`"):
        view.get("official")  # present in params, not declared: get() refuses too
    assert view.get("no_such_section", 7) == 7  # absent from params: an ordinary missing key
    assert view["tracking"] == params["tracking"]  # where results are logged: every stage sees it


def test_one_key_of_a_section(params):
    view = stage_view(params, ["datasets.synthetic", "analysis.ngrams"])
    assert view["datasets"]["synthetic"] == params["datasets"]["synthetic"]
    assert set(view["analysis"]) == {"ngrams"}
    with pytest.raises(ParamsError, match=r"`analysis\.claims`"):
        view["analysis"]["claims"]
    with pytest.raises(ParamsError, match=r"'nope' is not declared in params `datasets`; declared are \['synthetic'"):
        stage_view(params, ["datasets.nope"])


@pytest.mark.parametrize("variant", ["patchwise", "table2-no-prior-s1", "scaling-tokens-16-s0"])
def test_a_variant_arrives_resolved_and_resolves_to_itself(params, variant):
    view = stage_view(params, ["tokenizer:variant"], variant)
    expected = variant_section(params, "tokenizer", "tokenizers", variant)
    assert view["tokenizer"] == expected
    assert variant_section(view, "tokenizer", "tokenizers", variant) == expected  # what the stage code calls
    with pytest.raises(ParamsError, match="`table2`"):
        view["table2"]


def test_training_view_has_no_sampling_and_its_value_ignores_sampling(params):
    view = stage_view(params, ["generator:variant:training"], "class-larp")
    assert "sampling" not in set(view["generator"]) and view["generator"]["tokenizer"] == "larp"
    with pytest.raises(ParamsError, match="`generator.sampling`"):
        "sampling" in view["generator"]  # noqa: B015  (training must not look at sampling)
    changed = json.loads(json.dumps(params))
    changed["generators"]["class-larp"]["sampling.temperature"] = 0.5
    decl = ["generator:variant:training", "run"]
    assert tracked_json(changed, decl, "class-larp") == tracked_json(params, decl, "class-larp")
    assert tracked_json(changed, ["generator:variant"], "class-larp") != tracked_json(params, ["generator:variant"],
                                                                                   "class-larp")


def test_dvc_keys(params):
    assert dvc_keys(params, ["tokenizer:variant", "clips"], "larp") == ["tokenizer", "tokenizers.larp", "clips"]
    train = dvc_keys(params, ["generator:variant:training"], "table2-no-prior-s0")
    assert "generator.sampling" not in train and "generator.lr" in train
    assert train[-3:] == ["table2.common", "table2.variants.no-prior", "table2.mode"]
    # a sampling-only run also tracks the reference entry whose weights it re-samples
    assert variant_keys(params, "generator", "table2-no-cfg-s2") == [
        "table2.common", f"table2.variants.{params['table2']['reference']}", "table2.reference",
        "table2.sampling_variants.no-cfg", "table2.mode"]
    with pytest.raises(ParamsError, match="no --variant"):
        dvc_keys(params, ["tokenizer:variant"])


@pytest.mark.parametrize("bad", ["tokenizer:name", "clips:variant", "generator:variant:sampling", "a..b", ""])
def test_malformed_declarations_are_refused(bad):
    with pytest.raises(ParamsError):
        parse(bad)


def test_unread_names_the_declared_sections_never_looked_up(params):
    view = stage_view(params, ["clips", "run", "analysis.ngrams", "tokenizer:variant"], "larp")
    assert view.unread() == ["clips", "run", "analysis.ngrams", "tokenizer:variant"]
    view["clips"]["frames"]  # a nested look-up counts for its section
    view["analysis"]  # the parent of a declared key: the stage may read the key through it
    variant_section(view, "tokenizer", "tokenizers", "larp")  # how stages read a variant section
    assert view.unread() == ["run"]
    view.get("run")
    assert view.unread() == []


def test_a_declared_optional_section_left_out_is_absent_not_an_error(params):
    """`official` is optional in the schema: a complete params file without it still runs make_table1."""
    without = {k: v for k, v in params.items() if k != "official"}
    view = stage_view(without, ["tokenizers", "official"])
    assert view.get("official") is None and "official" not in view
    assert dvc_keys(without, ["tokenizers", "official"]) == ["tokenizers"]
    with pytest.raises(ParamsError, match="params has no section `clips`"):  # a required one stays an error
        stage_view({k: v for k, v in params.items() if k != "clips"}, ["clips"])


def test_membership_of_an_undeclared_section_is_refused_too(params):
    view = stage_view(params, ["clips"])
    assert "clips" in view and "no_such_section" not in view
    with pytest.raises(ParamsError, match="`tokenizers`"):
        "tokenizers" in view  # noqa: B015  (would otherwise answer False: "no variant named ...")
