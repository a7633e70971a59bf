"""Atomic publication: a failed stage leaves nothing that looks complete; weights files describe themselves."""

import pytest
import torch

from larp.io import atomic_dir, atomic_file, load_weights, save_weights, write_json, read_json


def _leftovers(path):
    return [p.name for p in path.iterdir() if ".tmp-" in p.name]


def test_atomic_dir_publishes_on_success_and_replaces(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "1"
    with atomic_dir(final) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_dir_leaves_nothing_on_failure(tmp_path, exc):
    final = tmp_path / "out"
    with pytest.raises(exc):
        with atomic_dir(final) as tmp:
            (tmp / "half.txt").write_text("x")
            raise exc()
    assert not final.exists() and _leftovers(tmp_path) == []


def test_atomic_dir_failure_keeps_previous_output(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(ValueError):
        with atomic_dir(final) as tmp:
            raise ValueError
    assert (final / "old.txt").read_text() == "old"


def test_atomic_file_and_json(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "f.txt") as tmp:
            tmp.write_text("partial")
            raise RuntimeError
    assert not (tmp_path / "f.txt").exists() and _leftovers(tmp_path) == []
    write_json(tmp_path / "m.json", {"a": 1.5})
    assert read_json(tmp_path / "m.json") == {"a": 1.5}
    with pytest.raises(ValueError):
        write_json(tmp_path / "bad.json", {"a": float("nan")})
    assert not (tmp_path / "bad.json").exists()


def test_weights_roundtrip_with_config(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.zeros(4)}
    save_weights(tmp_path / "m.safetensors", state, {"model_config": {"width": 4}})
    loaded, meta = load_weights(tmp_path / "m.safetensors")
    assert meta == {"model_config": {"width": 4}}
    assert torch.equal(loaded["w"], state["w"])
    with pytest.raises(FileNotFoundError, match="run the stage that produces it"):
        load_weights(tmp_path / "missing.safetensors")
