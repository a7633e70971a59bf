"""Analysis stages (n-grams, token importance, redundancy) and the claims report, in-process on tiny inputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from larp.stages.analysis import evaluate_claims, ngram_runs
from larp.config import load_params
from larp.generator.model import ARGenerator
from larp.generator.presets import GENERATOR_PRESETS
from larp.io import read_json, save_weights
from larp.tokenizer.model import LARPTokenizer
from larp.tokenizer.presets import TOKENIZER_PRESETS

from .scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]
FILES = [str(ROOT / "params.yaml"), str(ROOT / "tests/fixtures/params.tiny.yaml")]


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_clips):
    """Untrained tiny tokenizers (holistic + patchwise) and class generators for every compared table2 run."""
    tmp = tmp_path_factory.mktemp("analysis")
    params = load_params(FILES)
    torch.manual_seed(0)
    tok = TOKENIZER_PRESETS["tiny"]
    for variant, cfg in (("larp", tok), ("patchwise", dataclasses.replace(tok, kind="patchwise", prior=None))):
        save_weights(tmp / f"tokenizer/{variant}/model.safetensors", LARPTokenizer(cfg).state_dict(),
                     {"model_config": cfg.to_dict(), "variant": variant})
    gcfg = dataclasses.replace(GENERATOR_PRESETS["tiny"], vocab_size=tok.codebook_size, num_tokens=tok.num_latents,
                               num_classes=3)
    for runs in ngram_runs(params).values():
        for run in runs:
            save_weights(tmp / f"generator/{run}/model.safetensors", ARGenerator(gcfg).state_dict(),
                         {"model_config": gcfg.to_dict(), "variant": run})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        yield {"tmp": tmp, "params": params, "clips": tiny_clips.parent, "gcfg": gcfg, "tok": tok}


def test_ngrams_stage_samples_every_seed_of_both_generators(ws):
    tmp, params = ws["tmp"], ws["params"]
    a, seeds = params["analysis"]["ngrams"], params["table2"]["seeds"]
    out = tmp / "reports/ngrams"
    rc = _script("analysis_ngrams").main(["--params", *FILES, "--generators",
                                          *sorted(str(g) for g in (tmp / "generator").iterdir()),
                                          "--out", str(out), "--metrics", str(tmp / "m/ngrams.json")])
    assert rc == 0
    skew = pd.read_csv(out / "skew.csv")
    assert len(skew) == len(a["compare"]) * len(seeds) * len(a["orders"])
    n_tokens = ws["tok"].num_latents
    for n in a["orders"]:  # every sampled sequence contributes L - n + 1 n-grams
        assert (skew[skew.n == n].total == a["num_sequences"] * (n_tokens - n + 1)).all()
    assert ((skew.normalized_entropy > 0) & (skew.normalized_entropy <= 1)).all()
    dom = pd.read_csv(out / "dominance.csv")
    assert sorted(dom.label.unique()) == sorted(a["compare"]) and len(dom) == len(a["compare"]) * len(seeds)
    assert ((dom.area_norm >= 0) & (dom.area_norm <= 1)).all()
    for f in ("histogram_2gram.png", "histogram_3gram.png", "dominance.png", "dominance_curves.csv"):
        assert (out / f).stat().st_size > 0
    metrics = read_json(tmp / "m/ngrams.json")
    assert {f"{label}/dominance_area_norm" for label in a["compare"]} <= set(metrics)


def test_sampled_sequences_are_uniform_over_classes_and_seeded(ws):
    from larp.stages.analysis import sample_sequences

    model = ARGenerator(ws["gcfg"])
    sampling = ws["params"]["generator"]["sampling"]
    t1, l1 = sample_sequences(model, 9, sampling=sampling, batch_size=4, seed=3, device="cpu")
    t2, _ = sample_sequences(model, 9, sampling=sampling, batch_size=4, seed=3, device="cpu")
    assert np.bincount(l1).tolist() == [3, 3, 3]
    assert t1.shape == (9, ws["gcfg"].num_tokens) and (t1 < ws["gcfg"].vocab_size).all()
    np.testing.assert_array_equal(t1, t2)


def test_importance_and_redundancy_stages(ws):
    tmp = ws["tmp"]
    a = ws["params"]["analysis"]
    store = str(ws["clips"] / ws["params"]["tokenizer"]["val_dataset"])  # both tokenizers' val_dataset
    common = ["--params", *FILES]
    assert _script("analysis_importance").main(
        [*common, "--tokenizer", str(tmp / "tokenizer" / a["importance"]["tokenizer"]), "--clips", store,
         "--out", str(tmp / "reports/importance"), "--metrics", str(tmp / "m/imp.json")]) == 0
    imp = pd.read_csv(tmp / "reports/importance/importance.csv")
    assert len(imp) == a["importance"]["num_videos"] * ws["tok"].num_latents
    assert (tmp / f"reports/importance/heatmap_token{a['importance']['heatmap_token']}.png").is_file()
    assert _script("analysis_redundancy").main(
        [*common, "--tokenizers", *(str(tmp / "tokenizer" / v) for v in a["redundancy"]["tokenizers"]),
         "--clips", store, "--out", str(tmp / "reports/redundancy"), "--metrics", str(tmp / "m/red.json")]) == 0
    red = pd.read_csv(tmp / "reports/redundancy/redundancy.csv")
    assert sorted(red.tokenizer.unique()) == sorted(a["redundancy"]["tokenizers"])
    for t in a["redundancy"]["tokenizers"]:
        assert red[red.tokenizer == t]["level"].tolist() == a["redundancy"]["levels"]
    gains = read_json(tmp / "m/red.json")
    for t in a["redundancy"]["tokenizers"]:
        c = red[red.tokenizer == t]
        assert gains[f"{t}/gain_db"] == pytest.approx(c.psnr_mean.iloc[-1] - c.psnr_mean.iloc[0])
    per_video = pd.read_csv(tmp / "reports/redundancy/redundancy_videos.csv")  # what the claim pairs
    assert per_video.groupby("tokenizer").video.nunique().tolist() == [a["redundancy"]["num_videos"]] * 2
    means = per_video.groupby(["tokenizer", "level"]).psnr.mean()
    for r in red.itertuples():
        assert r.psnr_mean == pytest.approx(means[(r.tokenizer, r.level)])


def _claim_inputs(gfvd_gap: float, entropy_gap: float, area_gap: float, gain_gap: float):
    """Seeds spread by J x scale around each mean, the same pattern in both groups: pooled std = scale exactly,
    so Δ/σ = gap / scale."""
    J = (-1.0, 0.0, 1.0)
    runs = pd.DataFrame([{"variant": v, "seed": s, "run": f"table2-{v}-s{s}", "psnr": 20 + 0.1 * J[s], "rfvd": 100 + J[s],
                          "gfvd": 200 + (gfvd_gap if v == "no-prior" else 0) + 2 * J[s]}
                         for v in ("larp", "no-prior") for s in range(3)])
    skew = pd.DataFrame([{"label": lab, "seed": s, "n": n,
                          "normalized_entropy": 0.9 + (entropy_gap if lab == "without" else 0) + 0.001 * J[s]}
                         for lab in ("with", "without") for s in range(3) for n in (2, 3)])
    dom = pd.DataFrame([{"label": lab, "seed": s, "area_norm": 0.5 + (area_gap if lab == "with" else 0) + 0.01 * J[s]}
                        for lab in ("with", "without") for s in range(3)])
    # per-video redundancy scores: holistic gains 3 + gain_gap on every video, patchwise 3 + 0.5 x (-1, -1, 1, 1), so
    # the paired difference has mean gain_gap and standard error 0.5 sqrt(4/3) / 2 ≈ 0.289
    jitter = (-0.5, -0.5, 0.5, 0.5)
    red = pd.DataFrame([{"tokenizer": t, "level": lv, "video": v,
                         "psnr": 20 + (lv - 1) / 15 * (3 + (gain_gap if t == "h" else jitter[v]))}
                        for t in ("h", "p") for lv in (1, 2, 4, 8, 16) for v in range(4)])
    return runs, skew, dom, red


@pytest.mark.parametrize("effect", [True, False])
def test_claims_follow_the_measured_differences(effect):
    gap = 3.0 if effect else 1.0  # Δ/σ = 3 (beyond the margin of 2) or 1 (within seed noise)
    claims = evaluate_claims(*_claim_inputs(2 * gap, 0.001 * gap, 0.01 * gap, gap - 2), reference="larp",
                             no_prior="no-prior", with_label="with", without_label="without", margin=2.0,
                             holistic="h", patchwise="p")
    assert [c["held"] for c in claims] == [effect, True, effect, effect, effect]


def test_claims_without_seed_spread_are_undecided():
    runs, skew, dom, red = _claim_inputs(50, 0.05, 0.2, 1)
    one = runs[runs.seed == 0]
    claims = evaluate_claims(one, skew, dom, red, reference="larp", no_prior="no-prior", with_label="with",
                             without_label="without", margin=2.0, holistic="h", patchwise="p")
    assert claims[0]["held"] is None and claims[1]["held"] is None


def test_make_claims_writes_a_row_per_claim(ws, tmp_path, html_tables):
    runs, skew, dom, red = _claim_inputs(50, 0.05, 0.2, 1)
    params = ws["params"]
    labels = list(params["analysis"]["ngrams"]["compare"])
    skew["label"] = skew.label.map({"with": labels[0], "without": labels[1]})
    dom["label"] = dom.label.map({"with": labels[0], "without": labels[1]})
    red["tokenizer"] = red.tokenizer.map(dict(zip("hp", params["analysis"]["redundancy"]["tokenizers"])))
    (tmp_path / "ng").mkdir()
    (tmp_path / "red").mkdir()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    skew.to_csv(tmp_path / "ng/skew.csv", index=False)
    dom.to_csv(tmp_path / "ng/dominance.csv", index=False)
    red.to_csv(tmp_path / "red/redundancy_videos.csv", index=False)
    rc = _script("make_claims").main(["--params", *FILES, "--table2-runs", str(tmp_path / "runs.csv"),
                                      "--ngrams", str(tmp_path / "ng"), "--redundancy", str(tmp_path / "red"),
                                      "--md", str(tmp_path / "claims.md"), "--html", str(tmp_path / "claims.html")])
    assert rc == 0
    text = (tmp_path / "claims.md").read_text()
    assert text.count("**held**") == 5 and "did not hold" not in text
    assert "Pearson r =" in text  # the diagnosis section relates gFVD to rFVD
    # the page snakemake --report shows: the claims table rendered (bold verdicts), the diagnosis after it
    page = (tmp_path / "claims.html").read_text()
    (claims,), tags = html_tables(page)
    assert claims[0] == ["#", "claim", "paper", "measured", "verdict"]
    assert [r[0] for r in claims[1:]] == ["1", "2", "3", "4", "5"] and all(r[4] == "held" for r in claims[1:])
    md_measured = [ln.split(" | ")[3] for ln in text.splitlines() if ln.startswith("| 1 |")]
    assert md_measured and claims[1][3] in md_measured[0] and tags["strong"] >= 5
    assert "<h2>Diagnosis</h2>" in page and "Pearson r =" in page


def test_generation_bound_reports_the_rfvd_gfvd_correlation():
    from larp.stages.analysis import generation_bound

    runs = pd.DataFrame({"run": list("abcd"), "rfvd": [100.0, 200.0, 300.0, 400.0], "gfvd": [110.0, 210.0, 310.0, 410.0],
                         "psnr": [22.0, 21.0, 20.0, 19.0]})
    text = "\n".join(generation_bound(runs))
    assert "Pearson r = 1.000" in text and "gFVD − rFVD = 10.0 ± 0.0" in text and "PSNR vs gFVD: Pearson r = -1.000" in text
