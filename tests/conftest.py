"""Shared test fixtures: tiny synthetic data generated once per session (no committed media), an HTML table reader."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

# the tiny synthetic set: 3 classes x 8 groups x 1 clip, 20 frames of 24x32 (split 1: train g08, test g01-g07)
TINY_SYNTHETIC = dict(seed=0, num_classes=3, groups=8, clips_per_group=1, frames=20, height=24, width=32, fps=25,
                      codec="mpeg4", container="avi")
# clips of 8 frames at 16x16; small shards so the store has several
TINY_CLIPS = dict(frames=8, stride=1, resolution=16, max_frames_per_video=None, max_failed_fraction=0.05,
                  shard_frames=64, rfvd_seed=0, gfvd_seed=42)


@pytest.fixture(scope="session")
def tiny_synthetic_params() -> dict:
    """The params ``synthetic`` section of the tiny set (a copy)."""
    return dict(TINY_SYNTHETIC)


@pytest.fixture(scope="session")
def tiny_clips_params() -> dict:
    """The params ``clips`` section used for the tiny clip store (a copy)."""
    return dict(TINY_CLIPS)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny synthetic dataset in UCF-101 layout (read-only: copy before modifying)."""
    from larp.data.synthetic import SyntheticConfig, make_synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic"
    make_synthetic(SyntheticConfig(**TINY_SYNTHETIC), root, threads=1)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_synthetic: Path) -> dict:
    """The params ``datasets`` entry of the tiny synthetic set."""
    return dict(kind="synthetic", root=str(tiny_synthetic), split=1, annotations=None, train_split="train",
                test_split="val")


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: dict) -> Path:
    """Root of the clip store extracted from the tiny synthetic set (read-only)."""
    from larp.data.clips import ClipConfig, extract_clips

    out = tmp_path_factory.mktemp("clips") / "synthetic"
    extract_clips("synthetic", tiny_dataset, ClipConfig(**TINY_CLIPS), out, threads=1)
    return out


@pytest.fixture
def tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow tracking at a temporary sqlite store for one test; returns its URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


class _Tables(HTMLParser):
    """The <table>s of an HTML page as rows of cell texts (entities decoded), and every <th> / <td> / <tr> seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def read_html_tables(text: str) -> tuple[list[list[list[str]]], dict[str, int]]:
    """(tables, tag counts) of an HTML page: each table a list of rows (header row first) of cell texts. Also checks
    that no Markdown pipe row survived the rendering as raw text."""
    assert not re.search(r"^\s*\|.*\|\s*$", text, flags=re.M), "a Markdown table row was left unrendered"
    parser = _Tables()
    parser.feed(text)
    parser.close()
    return parser.tables, parser.tags


@pytest.fixture
def html_tables():
    """``read_html_tables``: parse a written HTML page into its tables (a fixture so every test folder can use it)."""
    return read_html_tables
