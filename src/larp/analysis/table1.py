"""Table 1 of the paper (video generation comparison), reproduced: measured rows beside the paper's, quoted.

Layout as the paper's Table 1 (Wang et al., ICLR 2025): method, #params (tokenizer, generator), #tokens, rFVD,
frame-prediction gFVD (K600) and class-conditional gFVD (UCF-101), plus the reconstruction metrics of this run
(PSNR, SSIM, LPIPS). Every distance column names its dataset and detector, e.g. "rFVD synthetic [clf-synthetic]":
numbers from different detectors never share a column, and a classifier distance is never printed as plain FVD.
The paper's numbers are I3D FVD, so with ``detector.kind: i3d`` on UCF-101/K600 our rows land in the paper's
columns.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_file, pick_named, read_json
from .html import markdown_page

PAPER_SOURCE = "quoted: paper Table 1"
MEASURED_SOURCE = "measured: this run"
OFFICIAL_SOURCE = "official weights, our evaluation"  # imported by import_official (params `official`)
PAPER_CITATION = ("Wang et al., LARP: Tokenizing Videos with a Learned Autoregressive Generative Prior, ICLR 2025, "
                  "Table 1")
KINDS = ("rfvd", "fp", "class")  # column order of the distance columns (paper: rFVD, gFVD K600, gFVD UCF)
KIND_LABEL = {"rfvd": "rFVD", "fp": "gFVD frame pred.", "class": "gFVD class-cond."}
PAPER_DATASET = {"rfvd": "ucf101", "fp": "k600", "class": "ucf101"}  # the paper's columns, in our dataset names


@dataclass(frozen=True)
class QuotedRow:
    """One row of the paper's Table 1, as printed ("-": not reported; underlines for the best dropped)."""

    group: str
    method: str
    params_tokenizer: str
    params_generator: str
    tokens: str
    rfvd: str
    fp: str  # gFVD K600 (frame prediction)
    cls: str  # gFVD UCF (class-conditional)


_DIFF = "Diffusion (continuous video tokenizers)"  # the paper's group headers, shortened
_MLM = "MLM (discrete video tokenizers)"
_AR = "AR (discrete video tokenizers)"
# Paper Table 1 (Wang et al., ICLR 2025), verbatim (MAGVIT-AR / MAGVIT-v2-AR are taken by the paper from the
# MAGVIT-v2 appendix).
PAPER_ROWS: tuple[QuotedRow, ...] = (
    QuotedRow(_DIFF, "VideoFusion (Luo et al., 2023)", "-", "2B", "-", "-", "-", "173"),
    QuotedRow(_DIFF, "HPDM (Skorokhodov et al., 2024)", "-", "725M", "-", "-", "-", "66"),
    QuotedRow(_MLM, "MAGVIT-MLM (Yu et al., 2023a)", "158M", "306M", "1024", "25", "9.9", "76"),
    QuotedRow(_MLM, "MAGVIT-v2-MLM (Yu et al., 2023b)", "-", "307M", "1280", "8.6", "4.3", "58"),
    QuotedRow(_AR, "CogVideo (Hong et al., 2022)", "-", "9.4B", "2065", "-", "109.2", "626"),
    QuotedRow(_AR, "TATS (Ge et al., 2022)", "32M", "321M", "1024", "162", "-", "332"),
    QuotedRow(_AR, "MAGVIT-AR (Yu et al., 2023a)", "158M", "306M", "1024", "25", "-", "265"),
    QuotedRow(_AR, "MAGVIT-v2-AR (Yu et al., 2023b)", "-", "840M", "1280", "8.6", "-", "109"),
    QuotedRow(_AR, "OmniTokenizer (Wang et al., 2024)", "82.2M", "650M", "1280", "42", "32.9", "191"),
    QuotedRow(_AR, "LARP-L (Ours)", "173M", "343M", "1024", "24", "6.2", "107"),
    QuotedRow(_AR, "LARP-L-Long (Ours)", "173M", "343M", "1024", "20", "6.2", "102"),
    QuotedRow(_AR, "LARP-L-Long (Ours)", "173M", "632M", "1024", "20", "5.1", "57"),
)
PAPER_NOTE = (f"Quoted rows ({PAPER_SOURCE}): {PAPER_CITATION}. I3D FVD; LARP's protocols: rFVD on the UCF-101 "
              "train list, class-conditional gFVD on 10,000 UCF-101 clips, frame prediction on 50,000 K600 clips "
              "(docs/official-code-facts.md §6); other methods as reported by their papers. '-' = not reported.")


@dataclass
class Table:
    """A table as strings: ``header`` and ``rows`` are what both the Markdown and the CSV files hold."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def fmt_count(n: int | None) -> str:
    """Parameter count in the paper's style: 2B, 343M, 82.2M, 5.1K."""
    if n is None:
        return ""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}" if n / div < 100 else f"{n / div:.0f}{unit}"
    return str(n)


def _num(v: float | None, digits: int, none: str = "") -> str:
    return none if v is None else f"{v:.{digits}f}"


def fvd_header(kind: str, dataset: str, detector: str) -> str:
    """Column header of a distance: its kind, dataset and detector, e.g. "rFVD synthetic [clf-synthetic]"."""
    return f"{KIND_LABEL[kind]} {dataset} [{detector}]"


def _describe(ev: Mapping[str, Any], kind: str) -> str:
    n, d, frames = ev["num_clips"], ev["dataset"], ev["frames"]
    if kind == "rfvd":
        return (f"one window per video of the {d} {ev['split']} split ({n} clips, seed {ev['seed']}) vs their "
                "deterministic-SVQ reconstructions, clamped (official: the UCF-101 train list)")
    if kind == "class":
        return (f"{n} generated videos vs the Random({ev['seed']}) sample of {n} {frames}-frame chunks of the {d} "
                f"train split they were conditioned on, CFG {ev['cfg_scale']}")
    return (f"{n} predictions vs {n} Random({ev['seed']}) {frames}-frame chunks of the {d} test split, all "
            f"{frames} frames resized to {ev['resolution']}x{ev['resolution']}")


def _detector_note(det: Mapping[str, Any]) -> str:
    if det["kind"] == "i3d":
        return (f"`{det['name']}`: the Kinetics-400 I3D TorchScript model (git-blob SHA-1 {det['weights_hash']}), the "
                "standard FVD detector.")
    return (f"`{det['name']}`: a 3D-CNN video classifier trained on the {det['dataset']} train split by "
            f"train_detector (test accuracy {det['test_acc']:.1%} on {det['test_clips']} clips). Its Fréchet "
            "distances are NOT FVD and cannot be compared with I3D numbers.")


def build_table1(tokenizer_evals: Sequence[Mapping[str, Any]], generator_evals: Sequence[Mapping[str, Any]],
                 official: Sequence[str] = ()) -> Table:
    """Paper rows (quoted) and one measured row per tokenizer evaluation, with the generators trained on its tokens
    (several generators of one mode on one tokenizer give extra rows). Evaluations are evaluate_* output dicts."""
    measured: list[dict[Any, str]] = []
    notes, detectors = [PAPER_NOTE], {}
    protocols: dict[tuple[str, str], list[str]] = {}  # (metric, description) -> variants, in table order
    fvd_cols: list[tuple[str, str, str]] = [(k, PAPER_DATASET[k], "i3d") for k in KINDS]
    for tok in tokenizer_evals:
        gens = {m: [g for g in generator_evals if g["tokenizer"] == tok["variant"] and g["mode"] == m]
                for m in ("class", "fp")}
        for i in range(max(1, *(len(v) for v in gens.values()))):
            row_gens = {m: v[i] for m, v in gens.items() if i < len(v)}
            evals = [("rfvd", tok)] + [(m, g) for m, g in row_gens.items()]
            label = "Patchwise baseline" if tok["kind"] == "patchwise" else "LARP"
            names = ", ".join(g["variant"] for g in row_gens.values())
            counts = [(m, g["params_generator"]) for m, g in row_gens.items()]
            row: dict[Any, str] = {
                "group": "This run", "method": f"{label} [{tok['variant']}{'; ' + names if names else ''}]",
                "source": OFFICIAL_SOURCE if tok["variant"] in official else MEASURED_SOURCE,
                "params_tokenizer": fmt_count(tok["params_tokenizer"]),
                "params_generator": fmt_count(counts[0][1]) if len({c for _, c in counts}) == 1 else
                " / ".join(f"{fmt_count(c)} ({m})" for m, c in counts),
                "tokens": str(tok["num_tokens"]), "psnr": _num(tok["psnr"], 2, "inf"), "ssim": _num(tok["ssim"], 4),
                "lpips": _num(tok["lpips"], 4) if tok["lpips"] is not None else tok["lpips_status"]}
            for kind, ev in evals:
                col = (kind, ev["dataset"], ev["detector"]["name"])
                if col not in fvd_cols:
                    fvd_cols.append(col)
                row[col] = _num(ev[ev["metric"]], 1)
                detectors[ev["detector"]["name"]] = ev["detector"]
                # one note per protocol, naming every variant measured with it (not one copy per variant)
                variants = protocols.setdefault((ev["metric"], _describe(ev, kind)), [])
                if ev["variant"] not in variants:
                    variants.append(ev["variant"])
            measured.append(row)
    notes += [f"`{metric}` ({', '.join(variants)}): {desc}." for (metric, desc), variants in protocols.items()]
    notes += [_detector_note(d) for _, d in sorted(detectors.items())]
    fvd_cols.sort(key=lambda c: KINDS.index(c[0]))  # stable: paper columns first within each kind
    fixed = [("group", "Group"), ("method", "Method"), ("source", "Source"), ("params_tokenizer", "#Params tokenizer"),
             ("params_generator", "#Params generator"), ("tokens", "#Tokens")]
    tail = [("psnr", "PSNR"), ("ssim", "SSIM"), ("lpips", "LPIPS")]
    columns = fixed + [(c, fvd_header(*c)) for c in fvd_cols] + tail
    quoted = [{"group": r.group, "method": r.method, "source": PAPER_SOURCE, "params_tokenizer": r.params_tokenizer,
               "params_generator": r.params_generator, "tokens": r.tokens, ("rfvd", "ucf101", "i3d"): r.rfvd,
               ("fp", "k600", "i3d"): r.fp, ("class", "ucf101", "i3d"): r.cls} for r in PAPER_ROWS]
    rows = [[row.get(key, "") for key, _ in columns] for row in quoted + measured]
    return Table(header=[h for _, h in columns], rows=rows, notes=notes)


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


TITLE = "Table 1: video generation comparison (reproduction)"


def to_markdown(table: Table, title: str = TITLE) -> str:
    lines = [f"# {title}", "",
             "Columns follow the paper's Table 1; every distance column names its dataset and its detector in "
             "brackets. Rows marked `quoted` are copied from the paper, rows marked `measured` come from this run.",
             "", "| " + " | ".join(map(_md_cell, table.header)) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    lines += ["", "Notes:", ""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


HEALTH_NOTE = ("Tokenizer health (larp.metrics.health; README \"Tokenizer health\"), deterministic SVQ on one seeded "
               "window per held-out video: PSNR on all pixels and on moving pixels (max-channel deviation from the "
               "clip's temporal median above the threshold) for the reconstruction and for showing the clip's own "
               "static temporal-mean or median frame; the PSNR lost when each clip's tokens are decoded in a random "
               "order (about 0 dB: the decoder reads a bag of identical tokens); codebook usage. A tokenizer below "
               "the mean frame has learned less than one static frame per clip.")


def build_health_table(tokenizer_evals: Sequence[Mapping[str, Any]]) -> Table:
    """One row per tokenizer evaluation that carries a health report (older evaluations have none)."""
    header = ["Tokenizer", "Kind", "Clips", "PSNR", "mean frame", "median frame", "PSNR moving", "mean frame moving",
              "median frame moving", "Δ mean frame", "Δ mean frame moving", "permutation drop", "codes used",
              "perplexity", "beats the mean frame"]
    rows, reports = [], [tok["health"] for tok in tokenizer_evals if tok.get("health")]
    for tok in tokenizer_evals:
        h = tok.get("health")
        if not h:
            continue
        # a perfect reconstruction has no finite PSNR (None) and beats everything
        beats = all(h[k] is None or h[k] > 0 for k in ("gain_over_mean_frame_db", "moving_gain_over_mean_frame_db"))
        rows.append([tok["variant"], tok["kind"], f"{h['num_clips']} ({h['split']})", _num(h["psnr"], 2, "inf"),
                     _num(h["mean_frame_psnr"], 2), _num(h["median_frame_psnr"], 2), _num(h["psnr_moving"], 2, "-"),
                     _num(h["mean_frame_psnr_moving"], 2, "-"), _num(h["median_frame_psnr_moving"], 2, "-"),
                     _num(h["gain_over_mean_frame_db"], 2, "-"), _num(h["moving_gain_over_mean_frame_db"], 2, "-"),
                     _num(h["permutation_drop_db"], 2, "-"),
                     f"{h['codes_used']} ({100 * h['codebook_usage']:.0f} %)", _num(h["perplexity"], 1),
                     "yes" if beats else "no"])
    threshold = reports[0]["moving_threshold"] if reports else "-"
    return Table(header=header, rows=rows, notes=[HEALTH_NOTE, f"moving threshold: {threshold}; PSNR in dB."])


def health_markdown(table: Table) -> str:
    if not table.rows:
        return ""
    lines = ["", "## Tokenizer health", "", "| " + " | ".join(map(_md_cell, table.header)) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    lines += [""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def write_table1(table: Table, md_path: str | os.PathLike, csv_path: str | os.PathLike,
                 html_path: str | os.PathLike, health: Table | None = None) -> None:
    """Write the Markdown, its HTML page (for ``snakemake --report``) and the CSV of ``table``, each atomically; the
    health table follows in the Markdown."""
    md = to_markdown(table, TITLE) + (health_markdown(health) if health is not None else "")
    for path, text in ((md_path, md), (html_path, markdown_page(md, TITLE)), (csv_path, to_csv(table))):
        with atomic_file(path) as tmp:
            Path(tmp).write_text(text)


def read_evals(files: str | os.PathLike | Sequence[str | os.PathLike], names: Sequence[str],
               stage: str) -> list[dict[str, Any]]:
    """The evaluation ``<name>.json`` of each name, in order, from the evaluation files ``files`` (or a folder of
    them); a missing one names the stage job that makes it."""
    return [read_json(path) for path in pick_named(files, names, suffix=".json", stage=stage)]
