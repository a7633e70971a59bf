"""Stage scripts make_synthetic and extract_clips, run in-process on tiny params."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from .scripts import stage_script

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params.yaml"
TINY = REPO / "tests" / "fixtures" / "params.tiny.yaml"


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


make_synthetic, extract_clips = _script("make_synthetic"), _script("extract_clips")


@pytest.fixture
def tiny(tmp_path: Path, tracking_store: str, tiny_synthetic_params: dict, tiny_clips_params: dict) -> dict:
    """params.yaml + the tiny fixture + this test's override (sizes, temporary paths), and the stages' paths."""
    data = tmp_path / "data" / "synthetic"
    override = {"synthetic": tiny_synthetic_params, "clips": tiny_clips_params,
                "datasets": {"synthetic": {"root": str(data)}}}
    path = tmp_path / "params.tiny.yaml"
    path.write_text(yaml.safe_dump(override))
    return {"params": [str(PARAMS), str(TINY), str(path)], "data": data, "out": tmp_path / "results" / "clips" / "synthetic",
            "tmp": tmp_path, "db": Path(tracking_store.removeprefix("sqlite:///"))}


def test_make_synthetic_then_extract_clips(tiny: dict):
    assert make_synthetic.main(["--params", *tiny["params"], "--out", str(tiny["data"]), "--threads", "1"]) == 0
    for rel in ("DATASET.md", "ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt",
                "ucfTrainTestlist/testlist03.txt"):
        assert (tiny["data"] / rel).is_file(), rel
    assert len(list(tiny["data"].glob("*/*.avi"))) == 3 * 8 * 1

    argv = ["--params", *tiny["params"], "--dataset", "synthetic", "--input", str(tiny["data"]),
            "--out", str(tiny["out"]), "--metrics", str(tiny["tmp"] / "m.json"), "--threads", "2"]
    assert extract_clips.main(argv) == 0
    assert json.loads((tiny["tmp"] / "m.json").read_text())["train.ok"] == 3
    for rel in ("train/manifest.csv", "train/frames-00000.npy", "test/manifest.csv", "test/frames-00000.npy",
                "classes.csv", "failures.csv", "summary.json"):
        assert (tiny["out"] / rel).is_file(), rel
    summary = json.loads((tiny["out"] / "summary.json").read_text())
    assert set(summary) >= {"splits", "params", "seconds", "decode"}
    assert {k: summary["splits"][s]["ok"] for s, k in (("train", "train"), ("test", "test"))} == {"train": 3,
                                                                                                 "test": 21}
    # both stages logged to the temporary MLflow store, with the counts as metrics
    with sqlite3.connect(tiny["db"]) as db:
        runs = dict(db.execute("select name, status from runs").fetchall())
        metrics = dict(db.execute("select key, value from metrics").fetchall())
    assert runs == {"make_synthetic/synthetic": "FINISHED", "extract_clips/synthetic": "FINISHED"}
    assert metrics["train.ok"] == 3 and metrics["test.listed"] == 21 and metrics["videos"] == 24


def _run_expecting(code: int, main, argv: list[str], capsys) -> str:
    assert main(argv) == code
    return capsys.readouterr().err


def test_invalid_params_exit_2_naming_the_key(tiny: dict, capsys):
    bad = tiny["tmp"] / "bad.yaml"
    bad.write_text("clips:\n  frames: 1\nsynthetic:\n  codec: h265\n")
    err = _run_expecting(2, extract_clips.main, ["--params", *tiny["params"], str(bad), "--dataset", "synthetic",
                                                 "--input", str(tiny["data"]), "--out", str(tiny["out"]),
                                                 "--metrics", str(tiny["tmp"] / "m.json")], capsys)
    assert "clips.frames" in err and "Traceback" not in err
    err = _run_expecting(2, make_synthetic.main, ["--params", *tiny["params"], str(bad), "--out", str(tiny["data"])],
                         capsys)
    assert "synthetic.codec" in err
    assert not tiny["data"].exists() and not tiny["out"].exists()


def test_dataset_problems_exit_2_before_any_work(tiny: dict, capsys):
    base = ["--params", *tiny["params"], "--out", str(tiny["out"]), "--metrics", str(tiny["tmp"] / "m.json")]
    err = _run_expecting(2, extract_clips.main, [*base, "--dataset", "kinetics", "--input", str(tiny["data"])], capsys)
    assert "'kinetics' is not declared" in err
    err = _run_expecting(2, extract_clips.main, [*base, "--dataset", "synthetic", "--input", "elsewhere"], capsys)
    assert "--input elsewhere" in err
    err = _run_expecting(2, extract_clips.main, [*base, "--dataset", "synthetic", "--input", str(tiny["data"])], capsys)
    assert f"dataset root {tiny['data']} does not exist" in err
    assert not tiny["out"].exists() and not tiny["db"].exists()  # stopped before even the tracker started
