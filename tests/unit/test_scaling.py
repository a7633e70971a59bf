"""Scaling sweep: run names resolve like table2 runs (common, then the point, then the seed), the cross-checks name
the bad key, and make_scaling puts each evaluation on its figure's x and series."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from larp.analysis import scaling
from larp.config import load_params, validate_params, variant_section
from larp.errors import ParamsError
from larp.io import write_json
from larp.stages.tables import run_make_scaling
from larp.sweeps import all_trained_runs, find_run, generator_source, parse_run, run_name, trained_runs
from larp.tokenizer.presets import TOKENIZER_PRESETS, count_config_parameters
from larp.tokenizer.train import build_config

from tests.stages.scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/fixtures/params.tiny.yaml"
RFVD, GFVD = "rfvd[clf-synthetic]_720_16f", "gfvd[clf-synthetic]_512_16f"


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


# ----------------------------------------------------------------------------------------------------------
# run names and overrides


def test_run_names_name_their_sweep():
    assert run_name("tokens-16-no-prior", 0, "scaling") == "scaling-tokens-16-no-prior-s0"
    assert find_run("scaling-tokens-16-no-prior-s0") == ("scaling", "tokens-16-no-prior", 0)
    assert find_run("table2-no-prior-s2") == ("table2", "no-prior", 2)
    assert parse_run("scaling-size-s-s1", "scaling") == ("size-s", 1)
    # a scaling run is not a table2 run (the default sweep), and names of no sweep are nobody's
    assert parse_run("scaling-size-s-s1") is None and find_run("other-size-s-s1") is None
    assert find_run("larp") is None and find_run("scaling-x-sA") is None


def test_every_point_runs_every_seed_and_table2_is_unchanged(params):
    sw = params["scaling"]
    runs = trained_runs(params, "scaling")
    assert len(runs) == len(sw["points"]) * len(sw["seeds"]) and all(r.startswith("scaling-") for r in runs)
    assert all_trained_runs(params) == trained_runs(params) + runs  # table2 first, as before
    assert all(find_run(r)[0] == "table2" for r in trained_runs(params))


def test_overrides_apply_common_then_point_then_seed(params):
    p = copy.deepcopy(params)
    p["scaling"]["seeds"] = [0, 3]
    p["scaling"]["common"]["tokenizer"] = {"steps": 5, "lr": 2.0e-4}
    p["scaling"]["points"]["tokens-16"]["tokenizer"]["steps"] = 7
    tok = variant_section(p, "tokenizer", "tokenizers", "scaling-tokens-16-s3")
    assert tok["steps"] == 7 and tok["lr"] == 2.0e-4 and tok["seed"] == 3  # the point beats common; seed last
    # a dotted model key changes that key only: params.yaml's other `tokenizer.model` overrides stay
    assert tok["model"] == {**params["tokenizer"]["model"], "num_tokens": 16}
    gen = variant_section(p, "generator", "generators", "scaling-tokens-16-s3")
    assert gen["tokenizer"] == "scaling-tokens-16-s3" and gen["mode"] == p["scaling"]["mode"]
    assert gen["seed"] == 3 and gen["sampling"]["seed"] == 3
    assert gen["steps"] == p["scaling"]["common"]["generator"]["steps"]
    assert generator_source(p, "scaling-tokens-16-s3") == "scaling-tokens-16-s3"
    no_prior = variant_section(p, "tokenizer", "tokenizers", "scaling-tokens-32-no-prior-s0")
    assert no_prior["use_prior"] is False and no_prior["model"]["num_tokens"] == 32


def test_size_points_differ_from_the_reference_only_in_width_and_depth(params):
    cfgs = {name: build_config(variant_section(params, "tokenizer", "tokenizers", f"scaling-{name}-s0"),
                               params["clips"]) for name in ("size-s", "tokens-64", "size-l")}
    for name, cfg in cfgs.items():
        assert (cfg.num_tokens, cfg.codebook_size, cfg.latent_proj_gain) == (64, 512, 20.0), name
        rest = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("width", "enc_depth", "dec_depth")}
        assert rest == {k: v for k, v in dataclasses.asdict(cfgs["tokens-64"]).items()
                        if k not in ("width", "enc_depth", "dec_depth")}, name
    assert (cfgs["size-s"].width, cfgs["size-s"].enc_depth) == (96, 3)
    assert (cfgs["size-l"].width, cfgs["size-l"].enc_depth, cfgs["size-l"].dec_depth) == (128, 6, 6)
    counts = [count_config_parameters(cfgs[n]) for n in ("size-s", "tokens-64", "size-l")]
    assert counts == sorted(counts) and len(set(counts)) == 3
    assert TOKENIZER_PRESETS["embedded"].enc_depth == 4  # "embedded" itself untouched


def test_tiny_fixture_keeps_every_scaling_run_tiny():
    tiny = load_params([ROOT / "params.yaml", TINY])
    for run in trained_runs(tiny, "scaling"):
        tok = variant_section(tiny, "tokenizer", "tokenizers", run)
        gen = variant_section(tiny, "generator", "generators", run)
        assert tok["preset"] == "tiny" and tok["steps"] <= 10 and gen["steps"] <= 10, run
    cfgs = [build_config(variant_section(tiny, "tokenizer", "tokenizers", f"scaling-{n}-s0"), tiny["clips"])
            for n in ("size-s", "tokens-64", "size-l")]
    assert [count_config_parameters(c) for c in cfgs] == sorted(count_config_parameters(c) for c in cfgs)


# ----------------------------------------------------------------------------------------------------------
# cross-checks


def _bad(params, edit) -> str:
    bad = copy.deepcopy(params)
    edit(bad)
    with pytest.raises(ParamsError) as err:
        validate_params(bad)
    return str(err.value)


def test_figures_must_name_declared_points_once(params):
    msg = _bad(params, lambda p: p["scaling"]["figures"]["tokens"]["series"]["with prior"].append("tokens-128"))
    assert "scaling.figures.tokens.series.with prior: 'tokens-128' is not a declared point" in msg
    msg = _bad(params, lambda p: p["scaling"]["figures"]["size"]["series"]["LARP"].append("size-s"))
    assert "scaling.figures.size.series.LARP: point 'size-s' is listed more than once" in msg


def test_bad_points_seeds_and_names_are_refused(params):
    msg = _bad(params, lambda p: p["scaling"]["points"].update({"size-xl": {"tokenizer": {"preset": "embedded-XL"}}}))
    assert "scaling run scaling-size-xl-s0" in msg and "tokenizer.preset" in msg and "embedded-XL" in msg
    msg = _bad(params, lambda p: p["scaling"]["points"].update({"typo": {"tokenizer": {"use_priorr": False}}}))
    assert "use_priorr" in msg
    assert "scaling.seeds = [] is invalid" in _bad(params, lambda p: p["scaling"].update({"seeds": []}))
    assert "scaling.figures.tokens.x = 'steps' is invalid" in _bad(
        params, lambda p: p["scaling"]["figures"]["tokens"].update({"x": "steps"}))
    msg = _bad(params, lambda p: p["tokenizers"].update({"scaling-tokens-16-s0": {}}))
    assert "reserved for the scaling sweep runs" in msg
    with pytest.raises(ParamsError, match="no variant named"):
        variant_section(params, "tokenizer", "tokenizers", "scaling-tokens-16-s9")


def test_paper_config_declares_the_paper_points():
    paper = load_params(ROOT / "workflow/configs/paper.yaml")
    counts = {}
    for run in trained_runs(paper, "scaling"):
        cfg = build_config(variant_section(paper, "tokenizer", "tokenizers", run), paper["clips"])
        counts[parse_run(run, "scaling")[0]] = (cfg.num_tokens, cfg.prior is not None, count_config_parameters(cfg))
    assert {counts[f"tokens-{n}"][0] for n in (256, 512, 1024)} == {256, 512, 1024}
    assert not counts["tokens-256-no-prior"][1] and counts["tokens-256"][1]
    # LARP-S / B / L (paper 39.8M / 116.3M / 173.0M; the presets' counts, facts §9)
    assert [round(counts[n][2] / 1e6, 1) for n in ("size-s", "tokens-1024", "size-l")] == [39.7, 116.2, 172.9]


# ----------------------------------------------------------------------------------------------------------
# make_scaling on synthetic evaluations


SIZE_PARAMS = {"size-s": 800_000, "size-l": 2_600_000}


def _fake_scores(point: str, seed: int) -> tuple[int, int, float, float]:
    """(tokens, tokenizer params, rFVD, gFVD) that identify the point: rFVD = 1000 + tokens + 0.5 seed, gFVD = rFVD
    + 100 without the prior; size points get their own parameter counts."""
    tokens = int(point.split("-")[1]) if point.startswith("tokens-") else 64
    rfvd = 1000.0 + tokens + 0.5 * seed + (7.0 if point == "size-l" else 0.0)
    return tokens, SIZE_PARAMS.get(point, 1_800_000), rfvd, rfvd + (100.0 if "no-prior" in point else 0.0)


def _write_evals(params, folder: Path, skip: str | None = None) -> None:
    for run in trained_runs(params, "scaling"):
        point, seed = parse_run(run, "scaling")
        tokens, n_params, rfvd, gfvd = _fake_scores(point, seed)
        if run != skip:
            write_json(folder / "tok" / f"{run}.json", {"metric": RFVD, RFVD: rfvd, "psnr": 20.0, "ssim": 0.5,
                                                         "lpips": None, "num_tokens": tokens,
                                                         "params_tokenizer": n_params})
        write_json(folder / "gen" / f"{run}.json", {"metric": GFVD, GFVD: gfvd, "tokenizer": run,
                                                     "params_generator": 2_000_000})


@pytest.fixture()
def two_seeds(params):
    p = copy.deepcopy(params)
    p["scaling"]["seeds"] = [0, 1]
    return p


def test_curves_put_each_point_on_its_x_and_series(two_seeds, tmp_path):
    _write_evals(two_seeds, tmp_path)
    runs = scaling.collect_runs(two_seeds, tmp_path / "tok", tmp_path / "gen")
    assert len(runs) == 16 and list(runs.point.unique()) == list(two_seeds["scaling"]["points"])
    summary = scaling.summarize(runs).set_index("point")
    assert summary.loc["tokens-32-no-prior", "gfvd_mean"] == pytest.approx(1000 + 32 + 0.25 + 100)
    assert summary.loc["tokens-32", "rfvd_std"] == pytest.approx(np.std([1032.0, 1032.5], ddof=1))
    assert summary.loc["size-s", "seeds"] == 2 and np.isnan(summary.loc["size-s", "lpips_mean"])
    figs = two_seeds["scaling"]["figures"]
    tokens = scaling.figure_curves(summary.reset_index(), figs["tokens"])
    assert list(tokens) == ["with prior", "without prior"]
    for label, offset in (("with prior", 0.0), ("without prior", 100.0)):
        df = tokens[label]
        assert list(df.x) == [16, 32, 64]
        assert list(df.gfvd_mean) == pytest.approx([1000 + x + 0.25 + offset for x in (16, 32, 64)])
    size = scaling.figure_curves(summary.reset_index(), figs["size"])["LARP"]
    assert list(size.point) == ["size-s", "tokens-64", "size-l"] and list(size.x) == [800_000, 1_800_000, 2_600_000]
    assert list(size.rfvd_mean) == pytest.approx([1064.25, 1064.25, 1071.25])


def test_points_sharing_x_in_a_series_are_refused(params, tmp_path):
    _write_evals(params, tmp_path)
    summary = scaling.summarize(scaling.collect_runs(params, tmp_path / "tok", tmp_path / "gen"))
    spec = {"x": "tokens", "xlabel": "tokens", "series": {"mixed": ["tokens-64", "size-s"]}}
    with pytest.raises(scaling.StageError, match=r"'mixed': points \['tokens-64', 'size-s'\] share x = 64"):
        scaling.figure_curves(summary, spec)


def test_make_scaling_writes_the_report_plots_both_series_and_tracks_every_run(two_seeds, tmp_path, monkeypatch):
    import matplotlib
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _write_evals(two_seeds, tmp_path)
    drawn, save = {}, scaling._save

    def capture(fig, path, tight=True):  # what each figure draws, before it is written and closed
        drawn[Path(path).stem] = [
            (ax.get_xlabel(), ax.get_xscale(), {t.get_text() for t in ax.get_legend().get_texts()},
             {c.get_label(): (list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata())) for c in ax.containers})
            for ax in fig.axes]
        assert isinstance(fig, matplotlib.figure.Figure)
        return save(fig, path, tight)

    monkeypatch.setattr(scaling, "_save", capture)
    out = tmp_path / "reports/scaling"
    summary = run_make_scaling(two_seeds, tokenizer_evals=tmp_path / "tok", generator_evals=tmp_path / "gen",
                                       out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["points.csv", "runs.csv", "scaling.md", "size.png", "tokens.png"]
    assert (out / "tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 16 and {"point", "seed", "tokens", "params_tokenizer", "psnr", "lpips", "rfvd",
                                "gfvd"} <= set(runs.columns)
    assert len(pd.read_csv(out / "points.csv")) == len(summary) == 8
    (rfvd_panel, gfvd_panel) = drawn["tokens"]
    assert rfvd_panel[0] == gfvd_panel[0] == two_seeds["scaling"]["figures"]["tokens"]["xlabel"]
    assert rfvd_panel[1] == "log" and rfvd_panel[2] == {"with prior", "without prior"}
    xs, ys = gfvd_panel[3]["without prior"]
    assert xs == [16, 32, 64] and ys == pytest.approx([1116.25, 1132.25, 1164.25])
    md = (out / "scaling.md").read_text()
    assert RFVD in md and GFVD in md and "![tokens](tokens.png)" in md and "| size-l | embedded-L | yes | 64 |" in md
    assert "1132.2 ± 0.4 (tokens-32-no-prior)" in md  # the gFVD row of "without prior" at x = 32

    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["larp-scaling"], output_format="list")
    parents = [r for r in found if r.data.tags.get("stage") == "make_scaling"]
    children = [r for r in found if r.data.tags.get("stage") == "scaling"]
    assert len(parents) == 1 and len(children) == 16
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    child = next(c for c in children if c.data.tags["variant"] == "scaling-tokens-16-no-prior-s1")
    assert child.data.params["tokenizer_overrides.model.num_tokens"] == "16"
    assert child.data.params["tokenizer_overrides.use_prior"] == "False" and child.data.params["seed"] == "1"
    assert child.data.metrics["gfvd"] == pytest.approx(1116.5)


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


def test_a_missing_evaluation_names_the_job_that_makes_it(tmp_path, capsys):
    tiny = load_params([ROOT / "params.yaml", TINY])
    _write_evals(tiny, tmp_path, skip="scaling-size-l-s0")
    rc = _script("make_scaling").main(["--params", str(ROOT / "params.yaml"), str(TINY), "--tokenizer-evals",
                                       *map(str, (tmp_path / "tok").glob("*.json")), "--generator-evals",
                                       *map(str, (tmp_path / "gen").glob("*.json")),
                                       "--out", str(tmp_path / "out")])
    assert rc == 2 and not (tmp_path / "out").exists()
    assert "run evaluate_tokenizer@scaling-size-l-s0 first" in capsys.readouterr().err


def test_runs_scored_with_different_metrics_are_refused(params, tmp_path):
    _write_evals(params, tmp_path)
    other = "rfvd[clf-synthetic]_100_16f"
    write_json(tmp_path / "tok/scaling-size-s-s0.json", {"metric": other, other: 1.0, "psnr": 20.0, "lpips": None,
                                                          "num_tokens": 64, "params_tokenizer": 1})
    with pytest.raises(scaling.StageError, match="different rfvd metrics"):
        scaling.collect_runs(params, tmp_path / "tok", tmp_path / "gen")
