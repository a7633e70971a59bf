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


# --- issue 14: several outputs published as one, stale temporaries cleaned, readable modes, weight digests -------

_KILLED_PUBLISH = """
import os, sys
from pathlib import Path
import larp.io as io
base = Path(sys.argv[1])
real, finals = os.replace, {str(base / "model"), str(base / "metrics.json"), str(base / "report")}
def replace(src, dst):
    real(src, dst)
    if str(dst) in finals:
        os._exit(137)  # SIGKILL-like: no cleanup, right after the first output appeared
io.os.replace = replace
with io.atomic_outputs() as outs:
    (outs.dir(base / "model") / "model.safetensors").write_text("w")
    (outs.dir(base / "report") / "fig.png").write_text("f")
    io.write_json(outs.file(base / "metrics.json"), {"steps": 6})
"""


def test_a_kill_between_two_publishes_leaves_the_primary_output_absent(tmp_path):
    """Before: model dir, report dir, metrics were renamed one after another and a kill after the first left a
    complete-looking model folder. Now the primary output (named first) is the last to appear."""
    import subprocess
    import sys

    for old in (False, True):
        base = tmp_path / f"old{old}"
        base.mkdir()
        if old:
            (base / "model").mkdir()
            (base / "model" / "model.safetensors").write_text("previous run")
        proc = subprocess.run([sys.executable, "-c", _KILLED_PUBLISH, str(base)], timeout=120)
        assert proc.returncode == 137
        assert not (base / "model").exists(), "a half-published stage left its primary output in place"


def test_atomic_outputs_publishes_all_or_nothing(tmp_path):
    from larp.io import atomic_outputs

    with pytest.raises(RuntimeError):
        with atomic_outputs() as outs:
            (outs.dir(tmp_path / "a") / "x").write_text("1")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_outputs() as outs:
        (outs.dir(tmp_path / "a") / "x").write_text("1")
        write_json(outs.file(tmp_path / "m.json"), {"k": 1})
    assert (tmp_path / "a" / "x").read_text() == "1" and read_json(tmp_path / "m.json") == {"k": 1}
    assert _leftovers(tmp_path) == []


def test_stale_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from larp.io import HOST, STALE_AFTER_S

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.tmp-{HOST}-{dead_pid}-{'a' * 32}"
    live = tmp_path / f".out.tmp-{HOST}-{os.getpid()}-{'b' * 32}"
    legacy = tmp_path / f".out.tmp-{'c' * 32}"  # the name before pids were recorded
    for p in (stale, live, legacy):
        p.mkdir()
        (p / "half").write_text("x")
    old = time.time() - STALE_AFTER_S - 10
    os.utime(legacy, (old, old))
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("1")
    assert not stale.exists() and not legacy.exists() and live.exists()


def test_published_files_are_readable_by_the_group_and_others(tmp_path):
    import os

    save_weights(tmp_path / "m.safetensors", {"w": torch.ones(2)}, {"k": 1})
    write_json(tmp_path / "c.json", {"k": 1})
    umask = os.umask(0)
    os.umask(umask)
    for name in ("m.safetensors", "c.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def _corrupt_copies(tmp_path):
    good = tmp_path / "good.safetensors"
    save_weights(good, {"w": torch.randn(64, 64), "b": torch.zeros(64)}, {"model_config": {"width": 64}})
    data = good.read_bytes()
    header = int.from_bytes(data[:8], "little") + 8
    flipped = bytearray(data)
    for i in range(header, header + 1000):
        flipped[i] ^= 0xFF
    garbled = bytearray(data)
    garbled[8:40] = b"#" * 32
    return {"truncated": data[: len(data) // 2], "empty": b"", "header-garbled": bytes(garbled),
            "1000 flipped bytes": bytes(flipped)}


def test_damaged_weights_are_refused_naming_the_file(tmp_path):
    from larp.errors import StageError

    for what, content in _corrupt_copies(tmp_path).items():
        path = tmp_path / f"{what.replace(' ', '_')}.safetensors"
        path.write_bytes(content)
        with pytest.raises(StageError, match=rf"{path}.*(readable|digest).*re-run the stage"):
            load_weights(path)


def test_pick_named_takes_named_paths_in_order_and_names_the_missing_job(tmp_path):
    from larp.io import pick_named

    for n in ("a", "b"):
        (tmp_path / f"{n}.json").write_text("{}")
    files = [tmp_path / "b.json", tmp_path / "a.json"]
    assert pick_named(files, ["a", "b"], suffix=".json", stage="evaluate_tokenizer") == files[::-1]
    assert pick_named(tmp_path, ["b"], suffix=".json", stage="evaluate_tokenizer") == [tmp_path / "b.json"]
    with pytest.raises(FileNotFoundError, match=r"no c\.json among the 2 paths given; run evaluate_tokenizer@c"):
        pick_named(files, ["a", "c"], suffix=".json", stage="evaluate_tokenizer")
    with pytest.raises(FileNotFoundError, match=r"is a folder: pass the paths in it, e\.g\. .*\*\.json"):
        pick_named([tmp_path], ["a"], suffix=".json", stage="evaluate_tokenizer")
