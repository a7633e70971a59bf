"""params.yaml validation: every committed configuration is valid; bad values are named with their key path."""

import copy
from pathlib import Path

import pytest
import yaml

from larp.config import deep_merge, load_params, validate_params, variant_section
from larp.errors import ParamsError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [["params.yaml"], ["params.yaml", "tests/fixtures/params.tiny.yaml"]] + [
    ["params.yaml", str(p.relative_to(ROOT))] for p in sorted((ROOT / "workflow/configs").glob("*.yaml"))]


@pytest.mark.parametrize("files", CONFIGS, ids=lambda f: "+".join(Path(x).name for x in f))
def test_committed_configs_are_valid(files):
    params = load_params([ROOT / f for f in files])
    for name in params["tokenizers"]:
        variant_section(params, "tokenizer", "tokenizers", name)


def test_validation_imports_no_torch():
    """Issue 16: validating params (every variant's shape checks) and the Snakefile's helpers never import torch,
    pandas or av: the Snakemake parse runs them."""
    import subprocess
    import sys

    code = ("import sys; from larp.config import load_params, variant_section; import larp.sweeps, larp.official_params; "
            "p = load_params(['params.yaml', 'workflow/configs/official.yaml']); "
            "[variant_section(p, 'tokenizer', 'tokenizers', n) for n in p['tokenizers']]; "
            "print(sorted(m for m in ('torch', 'pandas', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture
def params():
    return load_params(ROOT / "params.yaml")


@pytest.mark.parametrize("mutate, expected", [
    (lambda p: p["clips"].__setitem__("frames", -3), "clips.frames = -3 is invalid: expected a number >= 2"),
    (lambda p: p["tokenizer"].__setitem__("lrr", 1.0), "tokenizer.lrr: unknown key"),
    (lambda p: p["tokenizer"].__setitem__("lr", "1e-4"), "tokenizer.lr = '1e-4' is invalid: expected a value of type number"),
    (lambda p: p["run"].__setitem__("device", "tpu"), "run.device = 'tpu' is invalid: expected one of"),
    (lambda p: p["tokenizer"]["loss"].__setitem__("disc_every", 0), "tokenizer.loss.disc_every = 0"),
    (lambda p: p["tokenizer"].__setitem__("train_datasets", ["ucf"]), "names dataset 'ucf', which is not declared"),
    (lambda p: p["tokenizers"].__setitem__("x", {"model.foo": 1}), "tokenizers.x: after its overrides"),
    (lambda p: p["tokenizers"].__setitem__("y", {"steps": 0}), "tokenizer.steps: 0 is less than the minimum of 1"),
    (lambda p: p.pop("clips"), "'clips' is a required property"),
    (lambda p: p["analysis"]["ngrams"]["compare"].__setitem__("without-prior", "nope"),
     "analysis.ngrams.compare.without-prior = 'nope' is not a trained table2 variant"),
    (lambda p: p["analysis"]["redundancy"].__setitem__("tokenizers", ["larp", "omni"]),
     "analysis.redundancy.tokenizers: 'omni' is not a declared tokenizer variant"),
    (lambda p: p["analysis"]["redundancy"].__setitem__("levels", [1, 3]),
     "analysis.redundancy.levels: 3 does not divide clips.frames = 16"),
])
def test_invalid_values_are_named(params, mutate, expected):
    bad = copy.deepcopy(params)
    mutate(bad)
    with pytest.raises(ParamsError) as err:
        validate_params(bad, "params.yaml")
    assert expected in str(err.value), str(err.value)


def test_yaml_1e4_string_gets_a_hint(tmp_path):
    (tmp_path / "o.yaml").write_text("tokenizer:\n  lr: 1e-4\n")
    with pytest.raises(ParamsError, match="write floats as 1.0e-4"):
        load_params([ROOT / "params.yaml", tmp_path / "o.yaml"])


def test_merge_is_recursive_and_replaces_lists():
    a = {"x": {"y": 1, "z": [1, 2]}, "w": 0}
    assert deep_merge(a, {"x": {"z": [3]}}) == {"x": {"y": 1, "z": [3]}, "w": 0}
    assert a["x"]["z"] == [1, 2]


def test_variant_overrides_apply_and_are_checked(params):
    assert variant_section(params, "tokenizer", "tokenizers", "patchwise")["model"]["kind"] == "patchwise"
    with pytest.raises(ParamsError, match="no variant named 'nope'"):
        variant_section(params, "tokenizer", "tokenizers", "nope")


def test_every_key_in_params_yaml_is_commented():
    """params.yaml documents every key on its own line (the README points users there)."""
    lines = (ROOT / "params.yaml").read_text().splitlines()
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    leaf_lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#") and not ln.rstrip().endswith(":")]
    missing = [ln for ln in leaf_lines if "#" not in ln and not ln.strip().startswith("- ")
               and not ln.strip().startswith("model.kind")]
    assert data and not missing, f"uncommented keys in params.yaml: {missing}"


# issue 14 case 9: combinations that passed validation and failed later with a ValueError traceback
BAD_COMBINATIONS = {
    "resolution not divisible by the patch size": (
        {"clips": {"resolution": 36}}, r"tokenizers\.larp: expected frames divisible by patch_t and resolution"),
    "heads do not divide the width": (
        {"tokenizer": {"model": {"heads": 7}}}, r"tokenizers\.larp: width must be divisible by heads"),
    "one token with the prior": (
        {"tokenizer": {"model": {"num_tokens": 1}}}, r"tokenizers\.larp: the AR prior needs at least 2 tokens"),
    "condition longer than the clip": (
        {"tokens": {"fp_context_frames": 17}}, r"tokens\.fp_context_frames: fp_context_frames must be in \[1, 16\]"),
    "more videos than the chunk pool": (
        {"generator": {"sampling": {"num_videos": 100000}}},
        r"generators\.class-larp: generator\.sampling\.num_videos = 100000 .* holds \d+ clips"),
    "i3d without its file": (
        {"detector": {"kind": "i3d", "i3d_path": None}}, r"detector\.kind is i3d but detector\.i3d_path is null"),
    "patchwise token count that would be ignored": (
        {"tokenizers": {"patchwise": {"model.kind": "patchwise", "model.num_tokens": 5}}},
        r"tokenizers\.patchwise: model\.num_tokens = 5 is ignored by a patchwise tokenizer, whose tokens are its 64"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMBINATIONS))
def test_bad_parameter_combinations_are_refused_naming_the_keys(params, case):
    change, expected = BAD_COMBINATIONS[case]
    with pytest.raises(ParamsError, match=expected):
        validate_params(deep_merge(params, change))


def test_synthetic_chunk_pool_from_params_matches_the_extracted_store(tiny_clips, tiny_dataset, tiny_clips_params,
                                                                      tiny_synthetic_params):
    from larp.config import _synthetic_chunk_pool
    from larp.data.clips import ClipStore, chunk_pool

    params = {"synthetic": tiny_synthetic_params, "clips": tiny_clips_params}
    for split in ("train", "test"):
        assert _synthetic_chunk_pool(params, tiny_dataset, split) == len(
            chunk_pool(ClipStore(tiny_clips, split), tiny_clips_params["frames"]))
