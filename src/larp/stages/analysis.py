"""Stage functions of the latent-space analyses (paper App. B.2-B.4) and the claims report (issue 6).

- ``run_ngrams``: token sequences sampled uniformly over classes from the Table 2 generators trained with and without
  the AR prior (every sweep seed), their 2-/3-gram frequency histograms (Fig. 12-14), skew summaries, and 2-gram
  class dominance curves with their areas (Eq. 9-10, Fig. 15).
- ``run_importance``: PSNR drop per replaced token (Fig. 10) and one token index's per-pixel heatmap (Fig. 11).
- ``run_redundancy``: reconstruction PSNR against repetition level for the holistic and patchwise tokenizers (Fig. 8).
- ``run_claims``: reads Table 2 and the analyses and states, per claim of the paper, whether it held, with numbers
  (Markdown and its HTML page).
Each writes figures (PNG) and data (CSV) into its report folder atomically and logs them to MLflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..analysis import plots
from ..analysis.html import markdown_page
from ..analysis.importance import curve_of, redundancy_gains, redundancy_scores, token_heatmap, token_importance
from ..analysis.ngrams import class_dominance, dominance_area, frequency_histogram, ngram_counts, skew_summary
from ..analysis.table2 import pooled_delta
from ..config import variant_section
from ..data.clips import ClipStore, rfvd_windows, to_float_video
from ..errors import StageError
from ..io import atomic_dir, atomic_file, pick_named, write_json
from ..runtime import resolve_device
from ..sweeps import (  # ngram_runs: torch-free there (the Snakefile reads it); re-exported
    SWEEP,
    ngram_runs,
)
from ..tracking import tracker_for

SECTION = "analysis"


def _publish(tracker, out_dir: str | os.PathLike, metrics_path: str | os.PathLike, metrics: dict[str, Any]) -> None:
    """After a report folder is published: write the DVC metrics file and log metrics and every report file."""
    write_json(metrics_path, metrics)
    tracker.log_metrics({k: v for k, v in metrics.items() if v is not None})
    for f in sorted(Path(out_dir).iterdir()):
        tracker.log_artifact(f)


# ----------------------------------------------------------------------------------------------------------
# n-grams and class dominance (App. B.4)


@torch.inference_mode()
def sample_sequences(model, num: int, *, sampling: Mapping[str, Any], batch_size: int, seed: int,
                     device: str) -> tuple[np.ndarray, np.ndarray]:
    """``num`` class-conditional token sequences, labels uniform over the classes (paper App. B.4: "uniformly
    conditioned on all 101 classes"): label i mod C for sequence i. Returns tokens (num, n) and labels (num,)."""
    from ..generator.sampling import generate

    if model.config.mode != "class":
        raise ValueError(f"n-gram analysis needs a class-conditional generator but found mode {model.config.mode!r}")
    labels = np.arange(num, dtype=np.int64) % model.config.num_classes
    gen = torch.Generator(device).manual_seed(seed)
    out = []
    for i in range(0, num, batch_size):
        cond = torch.from_numpy(labels[i:i + batch_size]).to(device)
        out.append(generate(model, cond, cfg_scale=sampling["cfg_scale"], temperature=sampling["temperature"],
                            top_k=sampling["top_k"], top_p=sampling["top_p"], generator=gen).cpu())
    return torch.cat(out).numpy(), labels


def run_ngrams(params: Mapping[str, Any], *, generators: str | os.PathLike | Sequence[str | os.PathLike],
               out_dir: str | os.PathLike, metrics_path: str | os.PathLike) -> dict[str, Any]:
    """Sample, count, summarise and plot (see module docstring); one row per (label, seed, n) in skew.csv and per
    (label, seed) in dominance.csv; histograms and dominance curves of the first seed are plotted. ``generators``:
    the train_generator outputs of the n-gram runs (``ngram_runs``), or one folder holding them."""
    from ..models import load_generator

    a = params[SECTION]["ngrams"]
    device = resolve_device(params["run"]["device"])
    runs, seeds = ngram_runs(params), params[SWEEP]["seeds"]
    folders = dict(zip(names := [n for ns in runs.values() for n in ns],
                       pick_named(generators, names, stage="train_generator")))
    skew_rows, doms, hists, curves = [], [], {n: {} for n in a["orders"]}, {}
    for label, names in runs.items():
        for seed, name in zip(seeds, names):
            model, _ = load_generator(folders[name], device=device)
            section = variant_section(params, "generator", "generators", name)
            tokens, labels = sample_sequences(model, a["num_sequences"], sampling=section["sampling"],
                                              batch_size=a["batch_size"], seed=a["seed"], device=device)
            vocab = model.config.vocab_size
            for n in a["orders"]:
                counts = ngram_counts(tokens, n, vocab_size=vocab)
                skew_rows.append({"label": label, "run": name, "seed": seed, "n": n,
                                  **skew_summary(counts, vocab, n)})
                if seed == seeds[0]:  # figures show the first seed
                    hists[n][label] = frequency_histogram(counts)
            doms.append(({"label": label, "run": name, "seed": seed},
                         class_dominance(tokens, labels, vocab, a["dominance_threshold"], n=2)))
            if seed == seeds[0]:  # figures show the first seed
                curves[label] = doms[-1][1]
    norm = max([len(d) for _, d in doms] + [1])  # one x range for every curve, as Fig. 15 compares them
    skew = pd.DataFrame(skew_rows)
    dominance = pd.DataFrame([{**key, **dominance_area(d, norm)} for key, d in doms])
    with tracker_for(params, stage="analysis_ngrams", variant="sweep", study="analysis",
                     resolved={"ngrams": dict(a), "runs": runs}) as tracker:
        with atomic_dir(out_dir) as tmp:
            skew.to_csv(tmp / "skew.csv", index=False)
            dominance.to_csv(tmp / "dominance.csv", index=False)
            for n, by_label in hists.items():
                pd.concat({k: v for k, v in by_label.items()}, names=["label"]).reset_index(level=0).to_csv(
                    tmp / f"histogram_{n}gram.csv", index=False)
                plots.plot_ngram_histograms(by_label, tmp / f"histogram_{n}gram.png",
                                            title=f"{n}-gram frequencies, {a['num_sequences']} sampled sequences")
            pd.concat(curves, names=["label"]).reset_index(level=0).to_csv(tmp / "dominance_curves.csv", index=False)
            plots.plot_dominance(curves, tmp / "dominance.png")
        metrics = {f"{r.label}/{r.n}gram_{k}": float(getattr(r, k))
                   for r in skew.groupby(["label", "n"], as_index=False).mean(numeric_only=True).itertuples()
                   for k in ("normalized_entropy", "gini", "top1pct_share")}
        metrics |= {f"{r.label}/dominance_area_norm": float(r.area_norm)
                    for r in dominance.groupby("label", as_index=False).mean(numeric_only=True).itertuples()}
        _publish(tracker, out_dir, metrics_path, metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------
# Token importance (App. B.3) and redundancy (App. B.2)


def _test_videos(clips: str | os.PathLike, num: int, frames: int, rfvd_seed: int,
                 tokenizer_meta: Mapping[str, Any]) -> torch.Tensor:
    """The first ``num`` validation windows of the clip store's test split (the tokenizer's ``val_dataset``, which the
    rule passes and the tokenizer's file records): one seeded window per video (``rfvd_windows`` with
    ``clips.rfvd_seed``), as train_tokenizer picks its validation clips."""
    val_dataset = (tokenizer_meta.get("stage_config") or {}).get("val_dataset")  # None for an imported tokenizer
    store = ClipStore(clips, "test", val_dataset)
    return to_float_video(store.read_many(rfvd_windows(store, frames, rfvd_seed)[:num], frames))


def run_importance(params: Mapping[str, Any], *, tokenizer: str | os.PathLike, clips: str | os.PathLike,
                   out_dir: str | os.PathLike, metrics_path: str | os.PathLike) -> dict[str, Any]:
    """Token importance of the tokenizer in ``tokenizer`` (analysis.importance.tokenizer's train_tokenizer output)
    on the clip store ``clips`` (its val_dataset)."""
    from ..models import load_tokenizer

    a = params[SECTION]["importance"]
    device = resolve_device(params["run"]["device"])
    (tokenizer,) = pick_named([tokenizer], [a["tokenizer"]], stage="train_tokenizer")
    tok, meta = load_tokenizer(tokenizer, device=device)
    videos = _test_videos(clips, a["num_videos"], tok.cfg.frames, params["clips"]["rfvd_seed"], meta)
    drops = token_importance(tok, videos, torch.Generator().manual_seed(a["seed"]))  # (V, n)
    heat = token_heatmap(tok, videos, index=a["heatmap_token"])
    per_token = drops.mean(0)  # (n,)
    half = drops.shape[0] // 2
    a_half, b_half = drops[:half].mean(0), drops[half:].mean(0)  # does a token matter alike in other videos?
    consistency = (float(np.corrcoef(a_half, b_half)[0, 1]) if half >= 1 and a_half.std() > 0 and b_half.std() > 0
                   else None)
    metrics = {"mean_drop_db": float(drops.mean()), "max_drop_db": float(drops.max()),
               "top_token": int(per_token.argmax()), "top_token_mean_drop_db": float(per_token.max()),
               "split_half_correlation": consistency, "num_videos": int(drops.shape[0])}
    with tracker_for(params, stage="analysis_importance", variant=a["tokenizer"], study="analysis",
                     resolved={"importance": dict(a)}) as tracker:
        with atomic_dir(out_dir) as tmp:
            v, t = np.meshgrid(np.arange(drops.shape[0]), np.arange(drops.shape[1]), indexing="ij")
            pd.DataFrame({"video": v.ravel(), "token": t.ravel(), "psnr_drop_db": drops.ravel()}).to_csv(
                tmp / "importance.csv", index=False)
            plots.plot_importance(drops, tmp / "importance.png")
            plots.plot_heatmaps(heat, tmp / f"heatmap_token{a['heatmap_token']}.png")
        _publish(tracker, out_dir, metrics_path, metrics)
    return metrics


def run_redundancy(params: Mapping[str, Any], *, tokenizers: Sequence[str | os.PathLike],
                   clips: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                   metrics_path: str | os.PathLike) -> dict[str, Any]:
    """Redundancy curves of ``tokenizers`` (the train_tokenizer outputs of analysis.redundancy.tokenizers, holistic
    first), each on its clip store (``clips``: one per tokenizer, or one for all). Both score the same clips when
    they share a val_dataset, so the per-video gains in ``redundancy_videos.csv`` can be compared pairwise (the claims
    report does)."""
    from ..models import load_tokenizer

    a = params[SECTION]["redundancy"]
    tokenizers = pick_named(tokenizers, a["tokenizers"], stage="train_tokenizer")  # in the declared order
    if len(clips) not in (1, len(tokenizers)):
        raise StageError(f"analysis_redundancy: {len(tokenizers)} tokenizers but {len(clips)} clip stores; pass one "
                         "clip store, or one per tokenizer in the same order")
    device = resolve_device(params["run"]["device"])
    scores = {}
    for name, folder, store in zip(a["tokenizers"], tokenizers, list(clips) * len(tokenizers) if len(clips) == 1
                                   else clips):
        tok, meta = load_tokenizer(folder, device=device)
        videos = _test_videos(store, a["num_videos"], tok.cfg.frames, params["clips"]["rfvd_seed"], meta)
        scores[name] = redundancy_scores(tok, videos, levels=a["levels"])
    curves = {k: curve_of(v) for k, v in scores.items()}
    metrics = {f"{k}/gain_db": float(redundancy_gains(v).mean()) for k, v in scores.items()}
    with tracker_for(params, stage="analysis_redundancy", variant="+".join(scores), study="analysis",
                     resolved={"redundancy": dict(a)}) as tracker:
        with atomic_dir(out_dir) as tmp:
            pd.concat(curves, names=["tokenizer"]).reset_index(level=0).to_csv(tmp / "redundancy.csv", index=False)
            pd.concat(scores, names=["tokenizer"]).reset_index(level=0).to_csv(tmp / "redundancy_videos.csv",
                                                                               index=False)
            plots.plot_redundancy(curves, tmp / "redundancy.png")
        _publish(tracker, out_dir, metrics_path, metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------
# The claims report

def _beyond(z: float, margin: float) -> bool | None:
    """Δ/σ at least ``margin`` in the claimed direction; None when undefined (no seed spread)."""
    return None if not np.isfinite(z) else bool(z >= margin)


def _verdict(held: bool | None) -> str:
    return {True: "**held**", False: "**did not hold**", None: "**undecided** (no seed spread)"}[held]


def evaluate_claims(runs: pd.DataFrame, skew: pd.DataFrame, dominance: pd.DataFrame, redundancy: pd.DataFrame, *,
                    reference: str, no_prior: str, with_label: str, without_label: str, margin: float,
                    holistic: str, patchwise: str) -> list[dict[str, Any]]:
    """The five claims of issue 6, each a dict: claim, paper, measured (text), held (True/False/None).

    A difference counts as beyond seed noise when |Δ| >= ``margin`` pooled sample stds (a t-like statistic; with 3
    seeds per side, margin 2 is roughly a two-sided 10 % test). ``redundancy`` holds per-video scores (tokenizer,
    level, video, psnr); its claim is judged by the paired per-video gain difference over its standard error."""
    out = []
    ref, nop = runs[runs.variant == reference], runs[runs.variant == no_prior]

    d, s, z = pooled_delta(nop.gfvd, ref.gfvd)  # positive: no-prior worse
    out.append({"claim": "The AR prior improves generation (gFVD) beyond seed spread",
                "paper": "Table 2: gFVD 107 with the prior vs 190 without",
                "measured": f"gFVD {ref.gfvd.mean():.1f} with vs {nop.gfvd.mean():.1f} without "
                            f"(Δ = {d:+.1f}, pooled std {s:.1f}, Δ/σ = {z:+.2f})",
                "held": _beyond(z, margin)})

    z = pooled_delta(nop.psnr, ref.psnr)[2]
    zr = pooled_delta(ref.rfvd, nop.rfvd)[2]  # positive: no-prior better rFVD
    held = None if not (np.isfinite(z) and np.isfinite(zr)) else bool(z > -margin and zr > -margin)
    out.append({"claim": "The tokenizer without the prior reconstructs at least as well",
                "paper": "Table 2: PSNR 27.95 vs 27.88, rFVD 23 vs 31 (no prior vs LARP-B)",
                "measured": f"PSNR {nop.psnr.mean():.2f} without vs {ref.psnr.mean():.2f} with (Δ/σ = {z:+.2f}); "
                            f"rFVD {nop.rfvd.mean():.1f} vs {ref.rfvd.mean():.1f} (Δ/σ in favour of no prior "
                            f"{zr:+.2f}); held = neither is worse by {margin} pooled stds",
                "held": held})

    parts, helds = [], []
    for n in sorted(skew.n.unique()):
        w = skew[(skew.label == with_label) & (skew.n == n)].normalized_entropy
        wo = skew[(skew.label == without_label) & (skew.n == n)].normalized_entropy
        z = pooled_delta(wo, w)[2]  # positive: with-prior lower entropy = more skewed
        parts.append(f"{n}-grams: normalised entropy {w.mean():.4f} with vs {wo.mean():.4f} without (Δ/σ = {z:+.2f})")
        helds.append(_beyond(z, margin))
    out.append({"claim": "n-gram distributions are more skewed with the prior",
                "paper": "App. B.4, Fig. 12-14: a few n-grams occur far more often with the prior",
                "measured": "; ".join(parts),
                "held": None if None in helds else all(helds)})

    w = dominance[dominance.label == with_label].area_norm
    wo = dominance[dominance.label == without_label].area_norm
    z = pooled_delta(w, wo)[2]
    out.append({"claim": "The class-dominance area is larger with the prior",
                "paper": "App. B.4, Fig. 15",
                "measured": f"normalised area {w.mean():.3f} with vs {wo.mean():.3f} without (Δ/σ = {z:+.2f})",
                "held": _beyond(z, margin)})

    gains = {tok: redundancy_gains(redundancy[redundancy.tokenizer == tok]) for tok in (holistic, patchwise)}
    diff = (gains[holistic] - gains[patchwise]).dropna()  # paired: both tokenizers scored the same videos
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
    z = float(diff.mean() / se) if np.isfinite(se) and se > 0 else np.nan
    out.append({"claim": "The holistic tokenizer gains more from temporal redundancy than the patchwise one",
                "paper": "App. B.2, Fig. 8 (against OmniTokenizer)",
                "measured": f"PSNR gain from level {int(redundancy.level.min())} to {int(redundancy.level.max())}: "
                            f"{gains[holistic].mean():+.2f} dB holistic vs {gains[patchwise].mean():+.2f} dB "
                            f"patchwise; paired over {len(diff)} videos, mean difference / standard error = {z:+.2f} "
                            "(one tokenizer each, so video-to-video, not seed-to-seed, spread)",
                "held": _beyond(z, margin)})
    return out


def generation_bound(runs: pd.DataFrame) -> list[str]:
    """Is generation limited by the tokenizer? Over the trained runs: Pearson r of rFVD and gFVD and the mean gap
    gFVD - rFVD. When r is near 1 and the gap small, every row's gFVD is its tokenizer's reconstruction floor plus a
    near-constant generator term, so a generator-side effect (the prior's claim 1) cannot show until the tokenizer
    reconstructs well (App. A's schedule, README "Embedded default")."""
    r = runs.dropna(subset=["rfvd", "gfvd"]).drop_duplicates("run")
    if len(r) < 3 or r.rfvd.std() == 0 or r.gfvd.std() == 0:
        return ["Too few runs with rFVD and gFVD to relate them."]
    corr = float(np.corrcoef(r.rfvd, r.gfvd)[0, 1])
    gap = r.gfvd - r.rfvd
    return [f"- Over {len(r)} runs, gFVD follows rFVD: Pearson r = {corr:.3f}; gFVD − rFVD = {gap.mean():.1f} ± "
            f"{gap.std(ddof=1):.1f} (mean ± sample std), against an rFVD spread of "
            f"{r.rfvd.min():.1f}-{r.rfvd.max():.1f}.",
            f"- PSNR vs gFVD: Pearson r = {float(np.corrcoef(r.psnr, r.gfvd)[0, 1]):.3f}."
            if r.psnr.notna().all() and r.psnr.std() > 0 else "- PSNR not available for every run.",
            "- r near 1 with a small gap means each generator reaches its tokenizer's reconstruction floor: the rows "
            "differ by how well their tokenizers reconstruct, and a generation-side effect of the prior is hidden "
            "below that floor."]


CLAIMS_TITLE = "The paper's claims on the embedded default: did they hold?"


def run_claims(params: Mapping[str, Any], *, table2_runs: str | os.PathLike, ngrams_dir: str | os.PathLike,
               redundancy_dir: str | os.PathLike, out_md: str | os.PathLike,
               out_html: str | os.PathLike) -> list[dict[str, Any]]:
    """Evaluate the paper's claims on this run; write them as Markdown (``out_md``) and as its HTML page
    (``out_html``, for ``snakemake --report``), each atomically, and log both."""
    a, sw = params[SECTION], params[SWEEP]
    labels = list(a["ngrams"]["compare"])
    runs = pd.read_csv(table2_runs)
    claims = evaluate_claims(
        runs, pd.read_csv(Path(ngrams_dir) / "skew.csv"),
        pd.read_csv(Path(ngrams_dir) / "dominance.csv"), pd.read_csv(Path(redundancy_dir) / "redundancy_videos.csv"),
        reference=sw["reference"], no_prior=a["claims"]["no_prior_variant"], with_label=labels[0],
        without_label=labels[1], margin=a["claims"]["margin"], holistic=a["redundancy"]["tokenizers"][0],
        patchwise=a["redundancy"]["tokenizers"][1])
    lines = [f"# {CLAIMS_TITLE}", "",
             f"Seeds: {sw['seeds']}. A difference counts as real when it is at least {a['claims']['margin']} pooled "
             "sample standard deviations over seeds (Δ/σ). Sources: reports/table2_runs.csv, "
             "reports/analysis/ngrams/, reports/analysis/redundancy/. Regenerated by `make_claims`.", "",
             "| # | claim | paper | measured | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {c['claim']} | {c['paper']} | {c['measured']} | {_verdict(c['held'])} |"
              for i, c in enumerate(claims, 1)]
    lines += ["", "## Diagnosis", "", *generation_bound(runs), ""]
    md = "\n".join(lines)
    for path, text in ((out_md, md), (out_html, markdown_page(md, CLAIMS_TITLE))):
        with atomic_file(path) as tmp:
            Path(tmp).write_text(text)
    with tracker_for(params, stage="make_claims", variant="sweep", study="analysis",
                     resolved={"claims": a["claims"]}) as t:
        t.log_metrics({f"claim{i}_held": float(c["held"]) for i, c in enumerate(claims, 1) if c["held"] is not None})
        t.log_artifact(out_md)
        t.log_artifact(out_html)
    return claims


__all__ = ["evaluate_claims", "generation_bound", "ngram_runs", "run_claims", "run_importance",
           "run_ngrams", "run_redundancy", "sample_sequences"]
