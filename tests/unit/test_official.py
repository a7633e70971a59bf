"""Stage import_official (larp.stages.official over larp.official) on tiny official-format folders built here: no network, no real weights.

Each folder is what the official classes write through PyTorchModelHubMixin: config.json (the constructor's
arguments, or the ModelArgs fields of the AR generator) and model.safetensors under the official module names.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from larp import official
from larp.config import load_params
from larp.errors import StageError
from larp.stages.official import run_import_official
from larp.tokenizer.model import sincos_1d, sincos_3d

from tests.stages.scripts import stage_script

ROOT = Path(__file__).resolve().parents[2]
# tiny sizes matching tests/fixtures/params.tiny.yaml clips (8 frames at 16 px): 2x2x2 patches of 4x8x8
FRAMES, RES, PT, PS, D, HEADS, N, DIM, K = 8, 16, 4, 8, 16, 2, 8, 4, 32
PRIOR = "gptc-XXS"  # 6 blocks of width 256, 4 heads (the smallest official prior)
GEN_D, GEN_LAYERS, GEN_HEADS, CLASSES = 32, 2, 2, 3


_script = stage_script  # the script with its rule's --reads (tests/stages/scripts.py)


# ------------------------------------------------------------------------------------- official-format builders

def tokenizer_config_json(**over) -> dict:
    """The LARPTokenizer arguments the official cfg passes (cfgs/larp_tokenizer.yaml), at a tiny size."""
    cfg = {
        "bottleneck": {"name": "bottleneck", "args": {"bottleneck_dim": DIM, "norm": "none", "regularizer": {
            "name": "vq", "args": {"codebook_size": K, "commitment_loss_weight": 0.25, "codebook_loss_weight": 1.0,
                                   "entropy_loss_weight": 0.0, "entropy_loss_temperature": 0.01,
                                   "l2_normalized": True, "stochastic": True, "stochastic_temperature": 0.03}}}},
        "prior_model": {"name": PRIOR, "use_mix_ss": True, "mix_ss_max_ratio": 0.5, "mix_ss_peak_steps_ratio": 0.3,
                        "n_rounds": 2, "avg_loss_over_rounds": True, "no_grad_before_last_round": False,
                        "no_dropout": False, "latent_ce_temperature": 1.0, "args": {"l2_normalized": True}},
        "bottleneck_token_num": N, "input_size": RES, "frame_num": FRAMES, "temporal_patch_size": PT,
        "patch_size": PS, "decoder_temporal_patch_size": PT, "decoder_patch_size": PS, "in_channels": 3,
        "transformer_name": "transformer_encoder_parallel", "encoder_name": "none", "decoder_name": "none",
        "latent_pe_scale_factor": 10000, "query_init_std": 0.02, "encoder_hidden_size": D, "decoder_hidden_size": D,
        "encoder_num_heads": HEADS, "decoder_num_heads": HEADS, "encoder_depth": 1, "decoder_depth": 1,
        "learned_encoder_patch_pe": False, "learned_encoder_latent_query_embed": True,
        "learned_decoder_latent_pe": False, "learned_decoder_patch_query_embed": False,
        "use_encoder_patch_token_type_embed": False, "use_encoder_latent_query_token_type_embed": False,
        "use_decoder_latent_token_type_embed": False, "use_decoder_patch_query_token_type_embed": True,
        "encoder_query_gaussian_init": True,
    }
    cfg.update(over)
    return cfg


def tokenizer_state(seed: int = 0, prior: bool = True) -> dict[str, torch.Tensor]:
    """Random tensors under the official tokenizer's state-dict names and shapes (timm blocks, gptc prior)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    m = (FRAMES // PT) * (RES // PS) ** 2
    s = {"x_embedder.proj.weight": r(D, 3, PT, PS, PS), "x_embedder.proj.bias": r(D),
         "encoder_patch_pe": sincos_3d(D, (FRAMES // PT, RES // PS, RES // PS))[None],
         "encoder_latent_query_embed": r(N, D),
         "decoder_latent_pe": sincos_1d(D, torch.arange(N))[None],
         "decoder_patch_query_embed": sincos_3d(D, (FRAMES // PT, RES // PS, RES // PS))[None],
         "decoder_patch_query_token_type_embed": r(1, 1, D),
         "bottleneck.in_linear.weight": r(DIM, D), "bottleneck.in_linear.bias": r(DIM),
         "bottleneck.out_linear.weight": r(D, DIM), "bottleneck.out_linear.bias": r(D),
         "bottleneck.regularizer.embedding.weight": r(K, DIM),
         "final_layer.norm_final.weight": 1 + r(D), "final_layer.norm_final.bias": r(D),
         "final_layer.linear.weight": r(PT * PS * PS * 3, D), "final_layer.linear.bias": r(PT * PS * PS * 3)}
    assert s["encoder_patch_pe"].shape == (1, m, D)
    for part in ("encoder", "decoder"):
        b = f"{part}.blocks.0"
        s.update({f"{b}.norm1.weight": 1 + r(D), f"{b}.norm1.bias": r(D), f"{b}.attn.qkv.weight": r(3 * D, D),
                  f"{b}.attn.proj.weight": r(D, D), f"{b}.attn.proj.bias": r(D), f"{b}.norm2.weight": 1 + r(D),
                  f"{b}.norm2.bias": r(D), f"{b}.mlp.fc1.weight": r(4 * D, D), f"{b}.mlp.fc1.bias": r(4 * D),
                  f"{b}.mlp.fc2.weight": r(D, 4 * D), f"{b}.mlp.fc2.bias": r(D)})
    if prior:
        depth, _, w = official.GPTC_SIZES[PRIOR]
        p = "prior_model"
        s.update({f"{p}.input_proj.weight": r(w, DIM), f"{p}.input_proj.bias": r(w), f"{p}.pos_emb": r(1, 1024, w),
                  f"{p}.ln_f.weight": 1 + r(w), f"{p}.ln_f.bias": r(w), f"{p}.head.weight": r(DIM, w),
                  f"{p}.head.bias": r(DIM)})
        for i in range(depth):
            b = f"{p}.blocks.{i}"
            for ln in ("ln1", "ln2"):
                s.update({f"{b}.{ln}.weight": 1 + r(w), f"{b}.{ln}.bias": r(w)})
            for lin in ("key", "query", "value", "proj"):
                s.update({f"{b}.attn.{lin}.weight": r(w, w), f"{b}.attn.{lin}.bias": r(w)})
            s.update({f"{b}.mlp.0.weight": r(4 * w, w), f"{b}.mlp.0.bias": r(4 * w), f"{b}.mlp.2.weight": r(w, 4 * w),
                      f"{b}.mlp.2.bias": r(w)})
    return s


def generator_config_json(fp: bool = False, **over) -> dict:
    """asdict(ModelArgs) as the official AR models are built (llama-abs-*, models/larp_ar.py), at a tiny size."""
    cfg = {"dim": GEN_D, "n_layer": GEN_LAYERS, "n_head": GEN_HEADS, "n_kv_head": None, "multiple_of": 32,
           "ffn_dim_multiplier": None, "rope_base": 10000, "norm_eps": 1e-5, "initializer_range": 0.02,
           "token_dropout_p": 0.1, "attn_dropout_p": 0.0, "resid_dropout_p": 0.1, "ffn_dropout_p": 0.1,
           "drop_path_rate": 0.0, "num_classes": CLASSES, "class_dropout_prob": 0.1, "model_type": "class_cond",
           "vocab_size": K, "cls_token_num": N + 1 if fp else 1, "max_batch_size": 32, "max_seq_len": N,
           "use_fixed_pe": False, "frame_prediction": fp}
    cfg.update(over)
    return cfg


def generator_state(fp: bool = False, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    ffn = 96  # int(2 * 4 * 32 / 3) = 85, rounded up to a multiple of 32
    seq = 2 * N if fp else N
    s = {"tok_embeddings.weight": r(K + (1 if fp else 0), GEN_D), "abs_pe": r(1, seq, GEN_D),
         "norm.weight": 1 + r(GEN_D), "output.weight": r(K, GEN_D)}
    if not fp:
        s["cls_embedding.embedding_table.weight"] = r(CLASSES + 1, GEN_D)
    for i in range(GEN_LAYERS):
        o = f"layers.{i}"
        s.update({f"{o}.attention.wqkv.weight": r(3 * GEN_D, GEN_D), f"{o}.attention.wo.weight": r(GEN_D, GEN_D),
                  f"{o}.feed_forward.w1.weight": r(ffn, GEN_D), f"{o}.feed_forward.w3.weight": r(ffn, GEN_D),
                  f"{o}.feed_forward.w2.weight": r(GEN_D, ffn), f"{o}.attention_norm.weight": 1 + r(GEN_D),
                  f"{o}.ffn_norm.weight": 1 + r(GEN_D)})
    return s


def write_folder(folder: Path, config: dict, state: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    return folder


@pytest.fixture
def params(tmp_path):
    """params.yaml + the tiny fixture + the official entries (local folders under tmp_path/src)."""
    src = tmp_path / "src"
    write_folder(src / "tok", tokenizer_config_json(), tokenizer_state())
    write_folder(src / "class", generator_config_json(), generator_state())
    write_folder(src / "fp", generator_config_json(fp=True), generator_state(fp=True))
    extra = {
        "tracking": {"enabled": False},
        "tokenizers": {"larp-official": {}},
        "generators": {"class-official": {"mode": "class", "tokenizer": "larp-official", "dataset": "synthetic"},
                       "fp-official": {"mode": "fp", "tokenizer": "larp-official", "dataset": "synthetic"}},
        "official": {
            "larp-official": {"kind": "tokenizer", "source": str(src / "tok"), "revision": None},
            "class-official": {"kind": "generator", "source": str(src / "class"), "revision": "v-test",
                               "tokenizer": "larp-official", "dataset": "synthetic"},
            "fp-official": {"kind": "generator", "source": str(src / "fp"), "revision": None,
                            "tokenizer": "larp-official", "dataset": "synthetic"}},
    }
    (tmp_path / "official.yaml").write_text(yaml.safe_dump(extra))
    files = [str(ROOT / "params.yaml"), str(ROOT / "tests/fixtures/params.tiny.yaml"), str(tmp_path / "official.yaml")]
    return {"files": files, "src": src, "tmp": tmp_path, "params": load_params(files)}


def _import(params, name: str, kind: str) -> tuple[int, Path]:
    t = params["tmp"]
    out = t / "results" / kind / name
    rc = _script("import_official").main(["--params", *params["files"], "--name", name, "--out", str(out),
                                          "--metrics", str(t / "metrics" / f"{name}.json"), "--threads", "1"],
                                         wildcards={"kind": kind})
    return rc, out


# ------------------------------------------------------------------------------------------------------- tests

def test_official_tokenizer_round_trip_puts_every_tensor_in_its_place(params):
    from larp.models import load_tokenizer

    rc, out = _import(params, "larp-official", "tokenizer")
    assert rc == 0
    model, meta = load_tokenizer(out)  # the project's own loader
    cfg, s, ours = model.cfg, tokenizer_state(), model.state_dict()
    assert (cfg.codebook_dim, cfg.decoder_latent_pe, cfg.prior.logit_temperature) == (DIM, "fixed", 1.0)
    assert (cfg.prior.width, cfg.prior.depth, cfg.prior.heads) == (256, 6, 4)
    torch.testing.assert_close(ours["patch_embed.proj.weight"], s["x_embedder.proj.weight"].reshape(D, -1),
                               rtol=0, atol=0)
    torch.testing.assert_close(ours["query_type"], s["decoder_patch_query_token_type_embed"][0], rtol=0, atol=0)
    torch.testing.assert_close(ours["prior.pos_emb"], s["prior_model.pos_emb"][:, :N], rtol=0, atol=0)
    b = "prior_model.blocks.3.attn"
    torch.testing.assert_close(ours["prior.blocks.3.attn.qkv.weight"],
                               torch.cat([s[f"{b}.query.weight"], s[f"{b}.key.weight"], s[f"{b}.value.weight"]]),
                               rtol=0, atol=0)
    plain = {"queries": "encoder_latent_query_embed", "encoder.0.mlp.0.weight": "encoder.blocks.0.mlp.fc1.weight",
             "decoder.0.attn.qkv.weight": "decoder.blocks.0.attn.qkv.weight",
             "quantizer.codebook.weight": "bottleneck.regularizer.embedding.weight",
             "latent_proj.bias": "bottleneck.out_linear.bias", "out_proj.weight": "final_layer.linear.weight",
             "prior.blocks.5.mlp.2.weight": "prior_model.blocks.5.mlp.2.weight"}
    for mine, theirs in plain.items():
        torch.testing.assert_close(ours[mine], s[theirs], rtol=0, atol=0)
    # every official tensor but the three fixed sin-cos tables (checked, not copied) is somewhere in ours
    copied = sum(v.numel() for k, v in s.items() if k not in ("encoder_patch_pe", "decoder_latent_pe",
                                                              "decoder_patch_query_embed"))
    assert copied - 1024 * 256 + N * 256 == sum(v.numel() for v in ours.values())
    prov = meta["official"]
    assert prov["source"] == str(params["src"] / "tok") and prov["revision"] is None
    for f in ("config.json", "model.safetensors"):
        assert prov["files_sha256"][f] == hashlib.sha256((params["src"] / "tok" / f).read_bytes()).hexdigest()
    assert json.loads((out / "provenance.json").read_text()) == prov
    assert any("never read" in n for n in prov["notes"])  # the dropped prior position rows are recorded


@pytest.mark.parametrize("name,fp", [("class-official", False), ("fp-official", True)])
def test_official_generator_round_trip(params, name, fp):
    from larp.models import load_generator

    rc, out = _import(params, name, "generator")
    assert rc == 0
    model, meta = load_generator(out)
    s, ours = generator_state(fp=fp), model.state_dict()
    assert model.config.mode == ("fp" if fp else "class") and model.config.ffn_hidden == 96
    names = {k: k for k in s} | ({} if fp else {"cls_embedding.weight": "cls_embedding.embedding_table.weight"})
    names.pop("cls_embedding.embedding_table.weight", None)
    assert set(names) == set(ours)
    for mine, theirs in names.items():
        torch.testing.assert_close(ours[mine], s[theirs], rtol=0, atol=0)
    assert (meta["tokenizer"], meta["dataset"], meta["token_meta"]["fp_context_frames"]) == ("larp-official",
                                                                                              "synthetic", 2)
    assert meta["official"]["revision"] == ("v-test" if not fp else None)


def _refusal(params, capsys, config: dict, state: dict, kind: str = "tokenizer") -> str:
    name = "larp-official" if kind == "tokenizer" else "class-official"
    write_folder(params["src"] / ("tok" if kind == "tokenizer" else "class"), config, state)
    rc, out = _import(params, name, kind)
    assert rc == 2 and not out.exists()  # nothing published
    return capsys.readouterr().err


def test_renamed_tensor_is_refused_by_both_names(params, capsys):
    s = tokenizer_state()
    s["encoder.blocks.0.mlp.fc_one.weight"] = s.pop("encoder.blocks.0.mlp.fc1.weight")
    err = _refusal(params, capsys, tokenizer_config_json(), s)
    assert "extra: official tensor encoder.blocks.0.mlp.fc_one.weight" in err
    assert "missing: official tensor encoder.blocks.0.mlp.fc1.weight" in err


def test_missing_extra_and_misshaped_tensors_are_refused_by_name(params, capsys):
    s = tokenizer_state()
    del s["prior_model.blocks.2.attn.value.bias"]
    s["decoder.blocks.0.attn.qkv.bias"] = torch.zeros(3 * D)
    s["bottleneck.regularizer.embedding.weight"] = torch.zeros(K, DIM + 1)
    err = _refusal(params, capsys, tokenizer_config_json(), s)
    assert "missing: official tensor prior_model.blocks.2.attn.value.bias" in err
    assert "extra: official tensor decoder.blocks.0.attn.qkv.bias" in err
    assert "mis-shaped: official tensor bottleneck.regularizer.embedding.weight has shape (32, 5)" in err


def test_misshaped_generator_tensor_is_refused(params, capsys):
    s = generator_state()
    s["abs_pe"] = torch.zeros(1, N + 1, GEN_D)
    err = _refusal(params, capsys, generator_config_json(), s, kind="generator")
    assert "mis-shaped: official tensor abs_pe has shape (1, 9, 32), expected (1, 8, 32)" in err


def test_wrong_fixed_positional_table_is_refused(params, capsys):
    s = tokenizer_state()
    s["decoder_latent_pe"] = s["decoder_latent_pe"] + 0.5
    err = _refusal(params, capsys, tokenizer_config_json(), s)
    assert "fixed buffer decoder_latent_pe differs" in err


def test_unknown_and_unsupported_config_keys_are_refused_by_name(params, capsys):
    cfg = tokenizer_config_json(new_switch=True, learned_encoder_patch_pe=True)
    cfg["bottleneck"]["args"]["regularizer"]["args"]["entropy_loss_weight"] = 0.1
    err = _refusal(params, capsys, cfg, tokenizer_state())
    assert "new_switch: unknown key" in err
    assert "learned_encoder_patch_pe = True is not supported" in err
    assert "bottleneck.args.regularizer.args.entropy_loss_weight = 0.1 is not supported" in err
    err = _refusal(params, capsys, generator_config_json(rope_scaling=2.0, use_fixed_pe=True), generator_state(),
                   kind="generator")
    assert "rope_scaling: unknown key" in err and "use_fixed_pe = True is not supported" in err


def test_pickle_only_folder_is_refused(params, capsys):
    folder = params["src"] / "tok"
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    rc, _ = _import(params, "larp-official", "tokenizer")
    assert rc == 2 and "pickle files" in capsys.readouterr().err


def test_kind_mismatch_is_refused(params, capsys):
    p = dict(params["params"])
    p["official"] = {**p["official"], "larp-official": {**p["official"]["larp-official"], "kind": "generator",
                                                        "tokenizer": "larp-official", "dataset": "synthetic"}}
    with pytest.raises(StageError, match="holds a tokenizer"):
        run_import_official(p, "larp-official", out_dir=params["tmp"] / "o", metrics_path=params["tmp"] / "m")


def test_hf_reference_goes_through_the_fetcher_and_records_its_commit(params):
    calls = []

    def fake_fetch(ref, revision, cache):
        calls.append((ref, revision))
        return params["src"] / "tok", "0123abcd" * 5

    src = official.read_source("hf://hywang66/LARP-L-long-tokenizer", revision=None, fetch=fake_fetch)
    assert calls == [("hf://hywang66/LARP-L-long-tokenizer", None)] and src.revision == "0123abcd" * 5
    assert official.detect_kind(src.config) == "tokenizer"


def test_hf_fetch_without_huggingface_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as when not installed; no network used
    with pytest.raises(StageError, match="needs the huggingface_hub package"):
        official.fetch_hf("hf://hywang66/LARP-L-long-tokenizer", None, "unused")


def test_generator_config_in_wrapped_form_is_read():
    cfg = official.generator_config({"config": generator_config_json(fp=True)})
    assert (cfg.mode, cfg.seq_len, cfg.token_table_size) == ("fp", 2 * N, K + 1)


def test_imported_weights_run_through_encode_sample_and_evaluation_stages(params, tiny_clips):
    """Imports at tiny scale scored by the project's own stages (classifier detector: tiny, not FVD)."""
    from larp.stages.evaluation import run_evaluate_generator, run_evaluate_tokenizer, run_train_detector
    from larp.stages.generator import run_sample_videos
    from larp.stages.tokenizer import run_encode_tokens

    p, t = params["params"], params["tmp"]
    for name, kind in (("larp-official", "tokenizer"), ("class-official", "generator"), ("fp-official", "generator")):
        assert _import(params, name, kind)[0] == 0
    res = t / "results"
    run_encode_tokens(p, tokenizer_dir=res / "tokenizer/larp-official", clips=[tiny_clips],
                      out_dir=res / "tokens/larp-official", metrics_path=t / "m/enc.json")
    assert np.load(res / "tokens/larp-official/synthetic/train.npz")["tokens"].shape[1] == N
    run_train_detector(p, "synthetic", clips=tiny_clips, out_dir=res / "detector/synthetic",
                       metrics_path=t / "m/det.json")
    ev = run_evaluate_tokenizer(p, "larp-official", tokenizer_dir=res / "tokenizer/larp-official", clips=tiny_clips,
                                detector_dir=res / "detector/synthetic", cache_dir=t / "cache",
                                out_path=res / "eval/tokenizer/larp-official.json")
    assert np.isfinite(ev["psnr"])
    for gen in ("class-official", "fp-official"):
        run_sample_videos(p, gen, generator_dir=res / "generator" / gen, tokenizer_dir=res / "tokenizer/larp-official",
                          clips=tiny_clips, out_dir=res / "samples" / gen, metrics_path=t / f"m/{gen}.json",
                          report_dir=t / "reports" / gen)
        ev = run_evaluate_generator(p, gen, samples_dir=res / "samples" / gen, generator_dir=res / "generator" / gen,
                                    clips=tiny_clips, detector_dir=res / "detector/synthetic", cache_dir=t / "cache",
                                    out_path=res / "eval/generator" / f"{gen}.json")
        assert np.isfinite(ev[ev["metric"]]) and ev["params_generator"] > 0
    from larp.analysis.table1 import OFFICIAL_SOURCE, build_table1, read_evals

    table = build_table1(read_evals(res / "eval/tokenizer", ["larp-official"], "evaluate_tokenizer"),
                         read_evals(res / "eval/generator", ["class-official", "fp-official"], "evaluate_generator"),
                         official=sorted(p["official"]))
    rows = [r for r in table.rows if r[2] == OFFICIAL_SOURCE]
    assert len(rows) == 1 and "larp-official; class-official, fp-official" in rows[0][1]
