"""Table 2 sweep: run names resolve to the right sections and seeds; the summary is mean ± std over seeds."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from larp.analysis.table2 import summarize, to_markdown
from larp.config import load_params, validate_params, variant_section
from larp.errors import ParamsError
from larp.runtime import stage_seed
from larp.sweeps import generator_source, parse_run, run_name, sampling_runs, trained_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def test_run_names_round_trip():
    assert parse_run(run_name("no-prior", 2)) == ("no-prior", 2)
    assert parse_run(run_name("alpha-0-03", 10)) == ("alpha-0-03", 10)
    assert parse_run("larp") is None and parse_run("table2-x-sA") is None


def test_every_variant_runs_every_seed(params):
    sw = params["table2"]
    assert len(sw["seeds"]) >= 3
    assert len(trained_runs(params)) == len(sw["variants"]) * len(sw["seeds"])
    assert len(sampling_runs(params)) == len(sw["sampling_variants"]) * len(sw["seeds"])


def test_runs_resolve_overrides_and_seed(params):
    tok = variant_section(params, "tokenizer", "tokenizers", "table2-no-prior-s2")
    assert tok["use_prior"] is False and tok["seed"] == 2 and stage_seed(params, tok) == 2
    ref = variant_section(params, "tokenizer", "tokenizers", "table2-larp-s1")
    assert ref["use_prior"] is True and ref["seed"] == 1
    gen = variant_section(params, "generator", "generators", "table2-det-quant-s0")
    assert gen["tokenizer"] == "table2-det-quant-s0" and gen["seed"] == 0 and gen["sampling"]["seed"] == 0
    # without a section seed the global one is used (Table 1 variants)
    assert stage_seed(params, variant_section(params, "tokenizer", "tokenizers", "larp")) == params["run"]["seed"]


def test_sampling_variant_reuses_the_reference_run(params):
    gen = variant_section(params, "generator", "generators", "table2-no-cfg-s1")
    ref = variant_section(params, "generator", "generators", "table2-larp-s1")
    assert gen["sampling"]["cfg_scale"] == 1.0 and ref["sampling"]["cfg_scale"] != 1.0
    assert {k: v for k, v in gen.items() if k != "sampling"} == {k: v for k, v in ref.items() if k != "sampling"}
    assert generator_source(params, "table2-no-cfg-s1") == "table2-larp-s1"
    assert generator_source(params, "table2-no-prior-s1") == "table2-no-prior-s1"


def test_undeclared_runs_and_bad_sweeps_are_refused(params):
    with pytest.raises(ParamsError, match="no variant named"):
        variant_section(params, "tokenizer", "tokenizers", "table2-larp-s99")
    bad = copy.deepcopy(params)
    bad["table2"]["reference"] = "nope"
    with pytest.raises(ParamsError, match="reference"):
        validate_params(bad)
    bad = copy.deepcopy(params)
    bad["table2"]["variants"]["typo"] = {"tokenizer": {"use_priorr": False}}
    with pytest.raises(ParamsError, match="use_priorr"):
        validate_params(bad)
    bad = copy.deepcopy(params)
    bad["tokenizers"]["table2-larp-s0"] = {}
    with pytest.raises(ParamsError, match="reserved"):
        validate_params(bad)


def _runs() -> pd.DataFrame:
    rows = []
    for variant, base in (("larp", 100.0), ("no-prior", 130.0)):
        for seed, noise in enumerate((-2.0, 0.0, 2.0)):
            rows.append({"variant": variant, "seed": seed, "run": run_name(variant, seed), "psnr": 20 + noise / 10,
                         "lpips": None, "rfvd": 50 + noise, "gfvd": base + noise,
                         "rfvd_metric": "rfvd[clf-synthetic]_720_16f", "gfvd_metric": "gfvd[clf-synthetic]_512_16f"})
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sample_std_with_delta_in_pooled_std():
    s = summarize(_runs(), ["larp", "no-prior"], "larp").set_index("variant")
    assert s.loc["no-prior", "gfvd_mean"] == pytest.approx(130.0)
    assert s.loc["no-prior", "gfvd_std"] == pytest.approx(2.0)  # ddof=1 of (-2, 0, 2)
    assert s.loc["no-prior", "gfvd_delta_in_std"] == pytest.approx(15.0)
    assert s.loc["larp", "gfvd_delta_in_std"] == pytest.approx(0.0)
    assert np.isnan(s.loc["larp", "lpips_mean"]) and s.loc["larp", "seeds"] == 3
    md = to_markdown(s.reset_index(), _runs(), "larp")
    assert "130.0 ± 2.0" in md and "No AR prior model" in md and "gfvd[clf-synthetic]_512_16f" in md


def _pm_text(summary, variant):
    r = summary.set_index("variant").loc[variant]
    return f"{r.gfvd_mean:.1f} ± {r.gfvd_std:.1f}"


def test_make_table2_writes_reports_and_one_parent_run_with_a_child_per_run(params, tmp_path, monkeypatch,
                                                                            html_tables):
    import mlflow

    from larp.stages.tables import run_make_table2
    from larp.io import write_json

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tok_dir, gen_dir = tmp_path / "tok", tmp_path / "gen"
    for i, run in enumerate(trained_runs(params)):
        write_json(tok_dir / f"{run}.json", {"metric": "rfvd[clf-synthetic]_720_16f",
                                             "rfvd[clf-synthetic]_720_16f": 50.0 + i, "psnr": 20.0, "lpips": None})
    for i, run in enumerate(trained_runs(params) + sampling_runs(params)):
        tok = variant_section(params, "generator", "generators", run)["tokenizer"]
        write_json(gen_dir / f"{run}.json", {"metric": "gfvd[clf-synthetic]_512_16f",
                                             "gfvd[clf-synthetic]_512_16f": 100.0 + i, "tokenizer": tok})
    out = tmp_path / "reports"
    summary = run_make_table2(params, tokenizer_evals=tok_dir, generator_evals=gen_dir, md_path=out / "t2.md",
                              csv_path=out / "t2.csv", runs_csv=out / "runs.csv", html_path=out / "t2.html")
    sw = params["table2"]
    assert list(summary.variant) == list(sw["variants"]) + list(sw["sampling_variants"])
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(trained_runs(params)) + len(sampling_runs(params))
    # a sampling-only row reuses the reference run's reconstruction scores (same tokenizer)
    ref = runs[runs.variant == sw["reference"]].set_index("seed")
    for _, r in runs[runs.variant.isin(list(sw["sampling_variants"]))].iterrows():
        assert r.rfvd == ref.loc[r.seed, "rfvd"] and r.gfvd != ref.loc[r.seed, "gfvd"]
    assert (out / "t2.md").read_text().count("\n| ") == len(summary) + 1
    # the HTML page (what snakemake --report shows) holds the same table, rendered
    (rows,), _ = html_tables((out / "t2.html").read_text())
    assert rows[0][:6] == ["Configuration", "seeds", "PSNR ↑", "LPIPS ↓", "rFVD ↓", "gFVD ↓"]
    assert len(rows) == len(summary) + 1 and [r[0].split()[0] for r in rows[1:]] == list(summary.variant)
    ref_row = next(r for r in rows if r[6] == "ref")
    assert ref_row[0].startswith(sw["reference"]) and ref_row[5] == _pm_text(summary, sw["reference"])
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["larp-table2"], output_format="list")
    parents = [r for r in found if r.data.tags.get("stage") == "make_table2"]
    children = [r for r in found if r.data.tags.get("stage") == "table2"]
    assert len(parents) == 1 and len(children) == len(runs)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    child = next(c for c in children if c.data.tags["variant"] == "table2-no-prior-s1")
    assert child.data.params["tokenizer_overrides.use_prior"] == "False" and child.data.params["seed"] == "1"


def test_runs_scored_with_different_gfvd_metrics_are_refused(params, tmp_path):
    from larp.analysis.table2 import collect_runs
    from larp.errors import StageError
    from larp.io import write_json

    rname = "rfvd[clf-synthetic]_720_16f"
    for run in trained_runs(params):
        write_json(tmp_path / "tok" / f"{run}.json", {"metric": rname, rname: 50.0, "psnr": 20.0, "lpips": None})
    for i, run in enumerate(trained_runs(params) + sampling_runs(params)):
        gname = "gfvd[clf-synthetic]_512_16f" if i else "gfvd[clf-synthetic]_64_16f"  # one run scored on 64 clips
        tok = variant_section(params, "generator", "generators", run)["tokenizer"]
        write_json(tmp_path / "gen" / f"{run}.json", {"metric": gname, gname: 100.0, "tokenizer": tok})
    with pytest.raises(StageError, match="table2 runs were scored with different gfvd metrics"):
        collect_runs(params, tmp_path / "tok", tmp_path / "gen")
