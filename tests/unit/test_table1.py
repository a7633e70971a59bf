"""Table 1: paper rows quoted, measured rows under detector-named columns, Markdown and CSV identical."""

from __future__ import annotations

import csv
import io
import re

import pytest

from larp.analysis.table1 import (
    MEASURED_SOURCE,
    PAPER_ROWS,
    PAPER_SOURCE,
    build_table1,
    fmt_count,
    to_csv,
    to_markdown,
    write_table1,
)


def _detector(kind: str, dataset: str) -> dict:
    if kind == "i3d":
        return {"name": "i3d", "kind": "i3d", "dataset": dataset, "feature_dim": 400, "weights_hash": "93daef59"}
    return {"name": f"clf-{dataset}", "kind": "classifier", "dataset": dataset, "feature_dim": 128,
            "weights_hash": "ab" * 32, "test_acc": 0.8125, "test_clips": 280}


def tok_eval(variant: str, kind: str, dataset: str = "synthetic", det: str = "classifier", lpips=None) -> dict:
    d = _detector(det, dataset)
    name = f"rfvd[{d['name']}]_720_16f"
    return {"variant": variant, "kind": kind, "dataset": dataset, "split": "train", "num_clips": 720, "frames": 16,
            "seed": 0, "detector": d, "metric": name, name: 12.345, "psnr": 25.678, "ssim": 0.81234,
            "lpips": lpips, "lpips_status": "ok" if lpips is not None else "n/a (lpips not installed)",
            "params_tokenizer": 1_234_567, "num_tokens": 128}


def gen_eval(variant: str, tokenizer: str, mode: str, dataset: str = "synthetic", det: str = "classifier") -> dict:
    d = _detector(det, dataset)
    protocol = "gfvd" if mode == "class" else "fp-fvd64"
    name = f"{protocol}[{d['name']}]_1024_16f"
    return {"variant": variant, "tokenizer": tokenizer, "mode": mode, "dataset": dataset, "num_clips": 1024,
            "frames": 16, "seed": 42, "cfg_scale": 1.25 if mode == "class" else 1.0, "resolution": 64,
            "detector": d, "metric": name, name: 101.26 if mode == "class" else 7.04, "params_generator": 2_500_000}


@pytest.fixture
def table():
    toks = [tok_eval("larp", "holistic"), tok_eval("patchwise", "patchwise")]
    gens = [gen_eval("class-larp", "larp", "class"), gen_eval("fp-larp", "larp", "fp"),
            gen_eval("class-patchwise", "patchwise", "class")]
    return build_table1(toks, gens)


def _rows(table):
    return [dict(zip(table.header, r)) for r in table.rows]


def test_paper_rows_are_present_and_marked_quoted(table):
    quoted = [r for r in _rows(table) if r["Source"] == PAPER_SOURCE]
    assert [r["Method"] for r in quoted] == [r.method for r in PAPER_ROWS]
    best = quoted[-1]  # LARP-L-Long with the 632M generator
    assert (best["#Params generator"], best["rFVD ucf101 [i3d]"], best["gFVD frame pred. k600 [i3d]"],
            best["gFVD class-cond. ucf101 [i3d]"]) == ("632M", "20", "5.1", "57")
    assert "quoted" in PAPER_SOURCE and "quoted" in to_markdown(table)
    assert any("ICLR 2025" in n and "Table 1" in n for n in table.notes)


def test_measured_rows_name_their_detector_and_never_a_bare_fvd(table):
    for h in table.header:
        if "FVD" in h:
            assert re.search(r"\[[a-z0-9-]+\]$", h), f"distance column without its detector: {h!r}"
    measured = [r for r in _rows(table) if r["Source"] == MEASURED_SOURCE]
    assert len(measured) == 2
    larp = measured[0]
    assert larp["rFVD synthetic [clf-synthetic]"] == "12.3"
    assert larp["gFVD class-cond. synthetic [clf-synthetic]"] == "101.3"
    assert larp["gFVD frame pred. synthetic [clf-synthetic]"] == "7.0"
    assert larp["rFVD ucf101 [i3d]"] == "", "a classifier number must never sit in an I3D column"
    assert measured[1]["gFVD frame pred. synthetic [clf-synthetic]"] == ""  # no fp generator on patchwise tokens
    assert (larp["#Params tokenizer"], larp["#Params generator"], larp["#Tokens"]) == ("1.23M", "2.5M", "128")
    assert (larp["PSNR"], larp["SSIM"], larp["LPIPS"]) == ("25.68", "0.8123", "n/a (lpips not installed)")
    for r in _rows(table):
        if r["Source"] == PAPER_SOURCE:
            assert all(v == "" for k, v in r.items() if "[clf-" in k)
    md = to_markdown(table)
    assert "NOT FVD" in md and "81.2%" in md  # the detector note with its test accuracy
    # one note per protocol naming every variant measured with it, not a copy per variant
    assert "`rfvd[clf-synthetic]_720_16f` (larp, patchwise): one window per video of the synthetic train split" in md
    assert md.count("one window per video of the synthetic train split") == 1


def test_i3d_rows_share_the_paper_columns():
    table = build_table1([tok_eval("larp", "holistic", "ucf101", "i3d", lpips=0.0812)],
                         [gen_eval("class-larp", "larp", "class", "ucf101", "i3d"),
                          gen_eval("fp-larp", "larp", "fp", "k600", "i3d")])
    fvd = [h for h in table.header if "FVD" in h]
    assert fvd == ["rFVD ucf101 [i3d]", "gFVD frame pred. k600 [i3d]", "gFVD class-cond. ucf101 [i3d]"]
    ours = _rows(table)[-1]
    assert (ours["rFVD ucf101 [i3d]"], ours["gFVD frame pred. k600 [i3d]"], ours["LPIPS"]) == ("12.3", "7.0", "0.0812")


def _parse_markdown(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_csv_markdown_and_html_agree(table, tmp_path, html_tables):
    write_table1(table, tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.html")
    md_rows = _parse_markdown((tmp_path / "t.md").read_text())
    csv_rows = list(csv.reader(io.StringIO((tmp_path / "t.csv").read_text())))
    assert csv_rows == [table.header] + table.rows
    assert md_rows == csv_rows
    assert (tmp_path / "t.csv").read_text() == to_csv(table)
    # the HTML page (the one snakemake --report shows) is the same table: every header cell and measured value
    html = (tmp_path / "t.html").read_text()
    (html_rows,), _ = html_tables(html)
    assert html_rows == csv_rows
    measured = next(r for r in md_rows if r[table.header.index("Source")] == MEASURED_SOURCE)
    rfvd = measured[table.header.index("rFVD synthetic [clf-synthetic]")]
    assert rfvd and f"<td>{rfvd}</td>" in html and measured in html_rows
    assert "<h1>Table 1: video generation comparison (reproduction)</h1>" in html


@pytest.mark.parametrize("n, text", [(2_000_000_000, "2B"), (343_040_000, "343M"), (82_200_000, "82.2M"),
                                     (1_234_567, "1.23M"), (5_100, "5.1K"), (12, "12")])
def test_parameter_counts_print_like_the_paper(n, text):
    assert fmt_count(n) == text
