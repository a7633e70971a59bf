"""Import the authors' released checkpoints (the official code's format) as this project's weight files.

The released models (``hywang66/LARP-L-long-tokenizer``, ``-AR``, ``-AR-FP``) were saved by the official classes
through ``huggingface_hub.PyTorchModelHubMixin``: a folder holding ``config.json`` (the constructor's arguments; for
the AR generator the fields of its ``ModelArgs`` dataclass) and ``model.safetensors`` (the ``state_dict`` under the
official module names, persistent buffers included). This module reads such a folder (or fetches an
``hf://owner/name`` reference with ``huggingface_hub`` where a network exists), builds our configuration from the
official one, copies every tensor through an explicit name map with a shape check, and publishes our safetensors
format (:func:`larp.io.save_weights`, read back by larp.models) with its provenance; the stage that publishes it is
larp.stages.official.

Nothing is loaded partially: an unknown or unsupported ``config.json`` key, an official tensor the map does not know
(extra), a tensor it expects but the file lacks (missing), or a shape that differs, stops the import with a
:class:`~larp.errors.StageError` naming every offender. Only JSON and safetensors are read (never pickles).

Official facts the map relies on (read from the official code, hywang66/LARP):
- tokenizer: 3D-conv patch embedder ``x_embedder.proj`` (our Linear over the conv weight flattened as (c, t, h, w));
  timm ViT blocks ``encoder.blocks.<i>`` / ``decoder.blocks.<i>`` (``norm1``, ``attn.qkv`` without bias, ``attn.proj``,
  ``norm2``, ``mlp.fc1``, ``mlp.fc2``); learned queries ``encoder_latent_query_embed``; the decoder's learned type
  vector ``decoder_patch_query_token_type_embed``; bottleneck ``bottleneck.in_linear`` / ``out_linear`` and codebook
  ``bottleneck.regularizer.embedding``; output ``final_layer.norm_final`` / ``final_layer.linear``. The fixed sin-cos
  tables ``encoder_patch_pe``, ``decoder_patch_query_embed`` and (unless learned) ``decoder_latent_pe`` are persistent
  buffers there and computed here: they are checked against ours, not copied.
- prior (``prior_model``, gptc): separate ``key`` / ``query`` / ``value`` Linear layers (concatenated here into one
  ``qkv`` in q, k, v order), ``ln1``, ``ln2``, ``mlp.0``, ``mlp.2``, ``ln_f``, ``head``, ``input_proj`` and a
  position table of ``max_seq_len`` rows (1024 in the released config) of which only the first n - 1 are ever read
  for n tokens: rows n.. are dropped and the drop is recorded.
- generator (``LARP_AR``): ``tok_embeddings``, ``cls_embedding.embedding_table`` (class mode), ``abs_pe``,
  ``layers.<i>.{attention.wqkv, attention.wo, feed_forward.w1/w2/w3, attention_norm, ffn_norm}``, ``norm``,
  ``output``.
The timm blocks of the released tokenizer were trained with LayerNorm eps 1e-5 (timm <= 1.0.15; 1.0.16 changed the
default to 1e-6), which is what our blocks use.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import StageError
from .io import file_digest, read_json
# torch-free there (the Snakefile reads them); re-exported
from .official_params import official_entry_json, official_targets

HF_PREFIX = "hf://"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FIXED_PE_TOL = 1e-4  # max |official buffer - our sin-cos| accepted (float32 tables of values in [-2, 2])

# official gptc prior sizes: name -> (depth, heads, width) (models/gptc.py registry)
GPTC_SIZES = {"gptc-L": (24, 16, 1024), "gptc-B": (12, 12, 768), "gptc-M": (12, 8, 512), "gptc-S": (12, 6, 384),
              "gptc-XS": (6, 6, 384), "gptc-XXS": (6, 4, 256)}
_NONE_NAMES = ("none", "no", "null", "")


# ---------------------------------------------------------------------------------------------------------------
# reading a source


@dataclass
class OfficialSource:
    """A resolved official checkpoint folder and where it came from."""

    folder: Path
    source: str  # the reference as given (local path or hf://owner/name)
    revision: str | None  # hub commit (hf://) or the revision given for a local copy
    config: dict[str, Any] = field(default_factory=dict)
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of every source file


def fetch_hf(reference: str, revision: str | None, cache_dir: str | Path) -> tuple[Path, str]:
    """Download ``hf://owner/name`` (config.json + model.safetensors only) with huggingface_hub; (folder, commit).

    Needs a network and the optional ``huggingface_hub`` package; never called by the tests."""
    repo_id = reference[len(HF_PREFIX):].strip("/")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id):
        raise StageError(f"{reference!r} is not an hf://owner/name reference")
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise StageError(f"fetching {reference} needs the huggingface_hub package (pip install huggingface_hub) "
                         "and a network; or download the folder elsewhere and give its local path as the source")
    try:
        commit = HfApi().model_info(repo_id, revision=revision).sha
        folder = snapshot_download(repo_id, revision=commit, cache_dir=str(cache_dir),
                                   allow_patterns=[CONFIG_FILE, WEIGHTS_FILE])
    except Exception as exc:  # network, authentication, unknown repository or revision
        raise StageError(f"could not fetch {reference} (revision {revision or 'main'}): {exc}") from exc
    return Path(folder), commit


def read_source(reference: str, *, revision: str | None = None, cache_dir: str | Path = "work/official",
                fetch: Callable[[str, str | None, str | Path], tuple[Path, str]] = fetch_hf) -> OfficialSource:
    """Resolve ``reference`` (a local folder or ``hf://owner/name``), digest every file, read config and tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if reference.startswith(HF_PREFIX):
        folder, revision = fetch(reference, revision, cache_dir)
    else:
        folder = Path(reference)
    if not folder.is_dir():
        raise StageError(f"official checkpoint folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.relative_to(folder).parts)
    if not (folder / WEIGHTS_FILE).is_file():
        pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
        hint = (f"; {pickles} are pickle files, which can run code when loaded and are never read here" if pickles
                else "")
        raise StageError(f"{folder} has no {WEIGHTS_FILE}{hint}")
    if not (folder / CONFIG_FILE).is_file():
        raise StageError(f"{folder} has no {CONFIG_FILE} (the official classes write it beside the weights)")
    digests = {str(p.relative_to(folder)): file_digest(p, hashlib.sha256()) for p in files}
    try:
        config = read_json(folder / CONFIG_FILE)
    except ValueError as exc:
        raise StageError(f"{folder / CONFIG_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise StageError(f"{folder / CONFIG_FILE} must hold a JSON object")
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError) as exc:
        raise StageError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {exc}") from exc
    return OfficialSource(folder, reference, revision, config, state, digests)


def detect_kind(config: Mapping[str, Any]) -> str:
    """"tokenizer" (LARPTokenizer's arguments) or "generator" (LARP_AR's ModelArgs) from config.json's keys."""
    if "bottleneck" in config:
        return "tokenizer"
    if "vocab_size" in _generator_fields(config):
        return "generator"
    raise StageError(f"config.json is neither an official tokenizer (no 'bottleneck') nor generator config "
                     f"(no 'vocab_size'); keys: {sorted(config)}")


# ---------------------------------------------------------------------------------------------------------------
# config checks


class _Checker:
    """Collects config problems so one error names all of them."""

    def __init__(self, what: str) -> None:
        self.what, self.problems = what, []

    def unknown(self, d: Mapping[str, Any], known: set[str], where: str) -> None:
        for key in sorted(set(d) - known):
            self.problems.append(f"{where}{key}: unknown key (supported: {sorted(known)})")

    def require(self, where: str, value: Any, ok: bool, expected: str) -> None:
        if not ok:
            self.problems.append(f"{where} = {value!r} is not supported (expected {expected})")

    def raise_if_any(self) -> None:
        if self.problems:
            raise StageError(f"{self.what}: {len(self.problems)} unsupported config.json value(s):\n  - "
                             + "\n  - ".join(self.problems))


def _is_none_name(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in _NONE_NAMES)


# LARPTokenizer.__init__ defaults (models/larp_tokenizer.py), used where an older config.json omits a key
TOKENIZER_DEFAULTS: dict[str, Any] = {
    "bottleneck_token_num": 1024, "input_size": 128, "frame_num": 16, "temporal_patch_size": 4, "patch_size": 8,
    "decoder_temporal_patch_size": 4, "decoder_patch_size": 8, "in_channels": 3,
    "transformer_name": "transformer_encoder_parallel", "encoder_name": None, "decoder_name": None,
    "latent_pe_scale_factor": 10000, "query_init_std": 0.02, "encoder_hidden_size": 768, "decoder_hidden_size": 768,
    "encoder_num_heads": 12, "decoder_num_heads": 12, "encoder_depth": 6, "decoder_depth": 6,
    "learned_encoder_patch_pe": False, "learned_encoder_latent_query_embed": True, "learned_decoder_latent_pe": False,
    "learned_decoder_patch_query_embed": False, "use_encoder_patch_token_type_embed": False,
    "use_encoder_latent_query_token_type_embed": False, "use_decoder_latent_token_type_embed": False,
    "use_decoder_patch_query_token_type_embed": False, "encoder_query_gaussian_init": True,
}
# the supported (required) value of each architecture switch
_TOKENIZER_SWITCHES = {"learned_encoder_patch_pe": False, "learned_encoder_latent_query_embed": True,
                       "learned_decoder_patch_query_embed": False, "use_encoder_patch_token_type_embed": False,
                       "use_encoder_latent_query_token_type_embed": False,
                       "use_decoder_latent_token_type_embed": False, "use_decoder_patch_query_token_type_embed": True}
_VQ_KEYS = {"codebook_size", "commitment_loss_weight", "codebook_loss_weight", "entropy_loss_weight",
            "entropy_loss_temperature", "l2_normalized", "stochastic", "stochastic_temperature", "same_index_shape",
            "dim", "token_nums"}
_GPTC_ARGS = {"l2_normalized", "embd_pdrop", "resid_pdrop", "attn_pdrop", "max_seq_len", "n_ind", "n_classes",
              "detach_x", "detach_target", "fully_separated"}
# prior keys that only steer training (scheduled sampling, loss averaging): recorded, not needed to run the model
_PRIOR_TRAINING_KEYS = {"use_mix_ss", "mix_ss_max_ratio", "mix_ss_peak_steps_ratio", "n_rounds",
                        "avg_loss_over_rounds", "no_grad_before_last_round"}


def tokenizer_config(official: Mapping[str, Any]):
    """Our :class:`TokenizerConfig` from the official tokenizer's config.json; refuses unknown/unsupported keys."""
    from .tokenizer.model import TokenizerConfig
    from .tokenizer.prior import PriorConfig

    chk = _Checker("official tokenizer")
    chk.unknown(official, set(TOKENIZER_DEFAULTS) | {"bottleneck", "prior_model"}, "")
    for key in ("bottleneck", "prior_model"):
        if not isinstance(official.get(key), Mapping):
            chk.problems.append(f"{key}: missing or not an object")
            chk.raise_if_any()
    c = {**TOKENIZER_DEFAULTS, **official}
    chk.require("in_channels", c["in_channels"], c["in_channels"] == 3, "3")
    chk.require("transformer_name", c["transformer_name"], c["transformer_name"] == "transformer_encoder_parallel",
                "'transformer_encoder_parallel'")
    for key in ("encoder_name", "decoder_name"):
        chk.require(key, c[key], _is_none_name(c[key]) or c[key] == "transformer_encoder_parallel",
                    "none or 'transformer_encoder_parallel'")
    chk.require("temporal_patch_size", c["temporal_patch_size"], c["temporal_patch_size"] > 1,
                "> 1 (the per-frame embedder is not supported)")
    for enc, dec in (("temporal_patch_size", "decoder_temporal_patch_size"), ("patch_size", "decoder_patch_size"),
                     ("encoder_hidden_size", "decoder_hidden_size"), ("encoder_num_heads", "decoder_num_heads")):
        chk.require(dec, c[dec], c[dec] == c[enc], f"equal to {enc} = {c[enc]!r}")
    for key, want in _TOKENIZER_SWITCHES.items():
        chk.require(key, c[key], c[key] is want, repr(want))
    chk.require("latent_pe_scale_factor", c["latent_pe_scale_factor"],
                c["learned_decoder_latent_pe"] or c["latent_pe_scale_factor"] == 10000, "10000")
    chk.require("learned_decoder_latent_pe", c["learned_decoder_latent_pe"],
                isinstance(c["learned_decoder_latent_pe"], bool), "true or false")

    bn = official["bottleneck"]
    chk.unknown(bn, {"name", "args"}, "bottleneck.")
    chk.require("bottleneck.name", bn.get("name"), bn.get("name") == "bottleneck", "'bottleneck'")
    bargs = bn.get("args") or {}
    chk.unknown(bargs, {"bottleneck_dim", "norm", "regularizer", "param_names", "input_dim", "output_dim",
                        "token_nums"}, "bottleneck.args.")
    chk.require("bottleneck.args.norm", bargs.get("norm"), _is_none_name(bargs.get("norm")), "none")
    chk.require("bottleneck.args.param_names", bargs.get("param_names"), bargs.get("param_names") is None, "null")
    dim = bargs.get("bottleneck_dim")
    chk.require("bottleneck.args.bottleneck_dim", dim, isinstance(dim, int) and dim > 0, "a positive integer")
    reg = bargs.get("regularizer") or {}
    chk.unknown(reg, {"name", "args"}, "bottleneck.args.regularizer.")
    chk.require("bottleneck.args.regularizer.name", reg.get("name"), reg.get("name") == "vq", "'vq'")
    vq = reg.get("args") or {}
    where = "bottleneck.args.regularizer.args."
    chk.unknown(vq, _VQ_KEYS, where)
    chk.require(where + "l2_normalized", vq.get("l2_normalized"), vq.get("l2_normalized") is True, "true")
    chk.require(where + "stochastic", vq.get("stochastic"), vq.get("stochastic") is True, "true (SVQ)")
    temp = vq.get("stochastic_temperature", 1.0)
    chk.require(where + "stochastic_temperature", temp, isinstance(temp, (int, float)) and temp > 0,
                "> 0 (a learned temperature is not supported)")
    chk.require(where + "entropy_loss_weight", vq.get("entropy_loss_weight", 0.0),
                vq.get("entropy_loss_weight", 0.0) == 0, "0")
    chk.require(where + "same_index_shape", vq.get("same_index_shape", True), vq.get("same_index_shape", True) is True,
                "true")
    chk.require(where + "codebook_size", vq.get("codebook_size"),
                isinstance(vq.get("codebook_size"), int) and vq.get("codebook_size", 0) > 0, "a positive integer")
    for key, want in (("dim", dim), ("token_nums", c["bottleneck_token_num"])):
        if key in vq:
            chk.require(where + key, vq[key], vq[key] == want, repr(want))

    pm = official["prior_model"]
    prior = None
    chk.unknown(pm, {"name", "args", "no_dropout", "latent_ce_temperature"} | _PRIOR_TRAINING_KEYS, "prior_model.")
    if not _is_none_name(pm.get("name")):
        chk.require("prior_model.name", pm.get("name"), pm.get("name") in GPTC_SIZES, f"one of {sorted(GPTC_SIZES)}")
        pargs = pm.get("args") or {}
        chk.unknown(pargs, _GPTC_ARGS, "prior_model.args.")
        chk.require("prior_model.args.l2_normalized", pargs.get("l2_normalized", True),
                    pargs.get("l2_normalized", True) is True, "true")
        drops = {k: pargs.get(k, 0.1) for k in ("embd_pdrop", "resid_pdrop", "attn_pdrop")}
        chk.require("prior_model.args.*_pdrop", drops, len(set(drops.values())) == 1, "one dropout for all three")
        chk.require("prior_model.args.max_seq_len", pargs.get("max_seq_len", 1024),
                    pargs.get("max_seq_len", 1024) >= c["bottleneck_token_num"], "at least bottleneck_token_num")
        for key, want in (("n_ind", dim), ("n_classes", vq.get("codebook_size")), ("detach_x", False),
                          ("fully_separated", False)):
            if key in pargs:
                chk.require(f"prior_model.args.{key}", pargs[key], pargs[key] == want, repr(want))
        temp_ce = pm.get("latent_ce_temperature", 1.0)
        chk.require("prior_model.latent_ce_temperature", temp_ce, isinstance(temp_ce, (int, float)) and temp_ce > 0,
                    "> 0")
        chk.raise_if_any()
        depth, heads, width = GPTC_SIZES[pm["name"]]
        dropout = 0.0 if pm.get("no_dropout", False) else float(next(iter(drops.values())))
        prior = PriorConfig(width=width, depth=depth, heads=heads, dropout=dropout,
                            logit_temperature=float(temp_ce), init="xavier")
    chk.raise_if_any()
    try:
        return TokenizerConfig(
            kind="holistic", frames=c["frame_num"], resolution=c["input_size"], patch_t=c["temporal_patch_size"],
            patch_s=c["patch_size"], width=c["encoder_hidden_size"], heads=c["encoder_num_heads"],
            enc_depth=c["encoder_depth"], dec_depth=c["decoder_depth"], num_tokens=c["bottleneck_token_num"],
            codebook_size=vq["codebook_size"], codebook_dim=dim, svq_temperature=float(temp),
            commit_weight=float(vq.get("commitment_loss_weight", 0.25)),
            codebook_weight=float(vq.get("codebook_loss_weight", 1.0)),
            decoder_latent_pe="learned" if c["learned_decoder_latent_pe"] else "fixed", prior=prior)
    except (TypeError, ValueError) as exc:
        raise StageError(f"official tokenizer config.json gives an invalid configuration: {exc}") from exc


# LARP_AR ModelArgs fields and defaults (models/larp_ar.py)
GENERATOR_DEFAULTS: dict[str, Any] = {
    "dim": 4096, "n_layer": 32, "n_head": 32, "n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None,
    "rope_base": 10000, "norm_eps": 1e-5, "initializer_range": 0.02, "token_dropout_p": 0.1, "attn_dropout_p": 0.0,
    "resid_dropout_p": 0.1, "ffn_dropout_p": 0.1, "drop_path_rate": 0.0, "num_classes": 101,
    "class_dropout_prob": 0.1, "model_type": "class_cond", "vocab_size": 8192, "cls_token_num": 1,
    "max_batch_size": 32, "max_seq_len": 1024, "use_fixed_pe": False, "frame_prediction": False,
}


def _generator_fields(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ModelArgs fields: config.json holds them at the top level (the mixin's dataclass form) or under
    "config" (the form for a dict-typed argument)."""
    if set(config) == {"config"} and isinstance(config["config"], Mapping):
        return config["config"]
    return config


def generator_config(official: Mapping[str, Any]):
    """Our :class:`GeneratorConfig` from the official generator's config.json; refuses unknown/unsupported keys."""
    from .generator.model import GeneratorConfig

    fields_ = _generator_fields(official)
    chk = _Checker("official generator")
    chk.unknown(fields_, set(GENERATOR_DEFAULTS), "")
    c = {**GENERATOR_DEFAULTS, **fields_}
    fp = c["frame_prediction"]
    chk.require("frame_prediction", fp, isinstance(fp, bool), "true or false")
    chk.require("n_kv_head", c["n_kv_head"], c["n_kv_head"] in (None, c["n_head"]), "null or n_head")
    chk.require("ffn_dim_multiplier", c["ffn_dim_multiplier"], c["ffn_dim_multiplier"] is None, "null")
    chk.require("attn_dropout_p", c["attn_dropout_p"], c["attn_dropout_p"] == 0, "0")
    chk.require("drop_path_rate", c["drop_path_rate"], c["drop_path_rate"] == 0, "0")
    chk.require("use_fixed_pe", c["use_fixed_pe"], c["use_fixed_pe"] is False, "false (learned abs-PE)")
    chk.require("model_type", c["model_type"], c["model_type"] == "class_cond", "'class_cond'")
    want_cls = c["max_seq_len"] + 1 if fp else 1
    chk.require("cls_token_num", c["cls_token_num"], c["cls_token_num"] == want_cls,
                f"{want_cls} ({'max_seq_len + 1 for frame prediction' if fp else 'one class token'})")
    if not fp:
        chk.require("class_dropout_prob", c["class_dropout_prob"], c["class_dropout_prob"] > 0,
                    "> 0 (the table then has the null class row CFG needs)")
    chk.raise_if_any()
    try:
        return GeneratorConfig(
            mode="fp" if fp else "class", vocab_size=c["vocab_size"], num_tokens=c["max_seq_len"],
            num_classes=c["num_classes"], width=c["dim"], depth=c["n_layer"], heads=c["n_head"],
            ffn_multiple_of=c["multiple_of"], norm_eps=float(c["norm_eps"]),
            class_dropout=float(c["class_dropout_prob"]), token_dropout=float(c["token_dropout_p"]),
            resid_dropout=float(c["resid_dropout_p"]), ffn_dropout=float(c["ffn_dropout_p"]))
    except (TypeError, ValueError) as exc:
        raise StageError(f"official generator config.json gives an invalid configuration: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------------
# name maps


@dataclass(frozen=True)
class Rule:
    """Our tensor ``ours`` from the official tensors ``sources`` (each with its expected official shape)."""

    ours: str
    sources: tuple[tuple[str, tuple[int, ...]], ...]
    convert: Callable[..., torch.Tensor] = lambda t: t  # official tensors -> ours
    note: str = ""


def _copy(ours: str, official: str, shape: tuple[int, ...], convert=None, note: str = "") -> Rule:
    return Rule(ours, ((official, tuple(shape)),), convert or (lambda t: t), note)


def _vit_block(ours: str, off: str, d: int, hidden: int) -> list[Rule]:
    return [_copy(f"{ours}.norm1.weight", f"{off}.norm1.weight", (d,)),
            _copy(f"{ours}.norm1.bias", f"{off}.norm1.bias", (d,)),
            _copy(f"{ours}.attn.qkv.weight", f"{off}.attn.qkv.weight", (3 * d, d)),
            _copy(f"{ours}.attn.proj.weight", f"{off}.attn.proj.weight", (d, d)),
            _copy(f"{ours}.attn.proj.bias", f"{off}.attn.proj.bias", (d,)),
            _copy(f"{ours}.norm2.weight", f"{off}.norm2.weight", (d,)),
            _copy(f"{ours}.norm2.bias", f"{off}.norm2.bias", (d,)),
            _copy(f"{ours}.mlp.0.weight", f"{off}.mlp.fc1.weight", (hidden, d)),
            _copy(f"{ours}.mlp.0.bias", f"{off}.mlp.fc1.bias", (hidden,)),
            _copy(f"{ours}.mlp.2.weight", f"{off}.mlp.fc2.weight", (d, hidden)),
            _copy(f"{ours}.mlp.2.bias", f"{off}.mlp.fc2.bias", (d,))]


def _prior_rules(cfg, official_rows: int) -> list[Rule]:
    w, dp, n = cfg.prior.width, cfg.codebook_dim, cfg.num_latents
    rules = [_copy("prior.input_proj.weight", "prior_model.input_proj.weight", (w, dp)),
             _copy("prior.input_proj.bias", "prior_model.input_proj.bias", (w,)),
             _copy("prior.pos_emb", "prior_model.pos_emb", (1, official_rows, w), lambda t: t[:, :n],
                   note=f"rows {n}..{official_rows - 1} of the official table are never read for {n} tokens; dropped"
                   if official_rows > n else ""),
             _copy("prior.ln_f.weight", "prior_model.ln_f.weight", (w,)),
             _copy("prior.ln_f.bias", "prior_model.ln_f.bias", (w,)),
             _copy("prior.head.weight", "prior_model.head.weight", (dp, w)),
             _copy("prior.head.bias", "prior_model.head.bias", (dp,))]
    for i in range(cfg.prior.depth):
        o, us = f"prior_model.blocks.{i}", f"prior.blocks.{i}"
        for ln in ("ln1", "ln2"):
            rules += [_copy(f"{us}.{ln}.weight", f"{o}.{ln}.weight", (w,)),
                      _copy(f"{us}.{ln}.bias", f"{o}.{ln}.bias", (w,))]
        for kind, shape in (("weight", (w, w)), ("bias", (w,))):
            rules.append(Rule(f"{us}.attn.qkv.{kind}", tuple((f"{o}.attn.{p}.{kind}", shape)
                                                              for p in ("query", "key", "value")),
                              lambda q, k, v: torch.cat([q, k, v], dim=0), "q, k, v concatenated"))
        rules += [_copy(f"{us}.attn.proj.weight", f"{o}.attn.proj.weight", (w, w)),
                  _copy(f"{us}.attn.proj.bias", f"{o}.attn.proj.bias", (w,)),
                  _copy(f"{us}.mlp.0.weight", f"{o}.mlp.0.weight", (4 * w, w)),
                  _copy(f"{us}.mlp.0.bias", f"{o}.mlp.0.bias", (4 * w,)),
                  _copy(f"{us}.mlp.2.weight", f"{o}.mlp.2.weight", (w, 4 * w)),
                  _copy(f"{us}.mlp.2.bias", f"{o}.mlp.2.bias", (w,))]
    return rules


def tokenizer_rules(cfg, official_prior_rows: int = 1024) -> tuple[list[Rule], dict[str, tuple[str, tuple[int, ...]]]]:
    """(copy rules, fixed buffers to verify: official name -> (our buffer name, official shape)) for ``cfg``."""
    d, n, m = cfg.width, cfg.num_latents, cfg.num_patches
    pt, p, hidden = cfg.patch_t, cfg.patch_s, int(cfg.width * cfg.mlp_ratio)
    out_dim = pt * p * p * 3
    rules = [_copy("patch_embed.proj.weight", "x_embedder.proj.weight", (d, 3, pt, p, p),
                   lambda t: t.reshape(t.shape[0], -1), "Conv3d kernel flattened as (c, t, h, w)"),
             _copy("patch_embed.proj.bias", "x_embedder.proj.bias", (d,)),
             _copy("queries", "encoder_latent_query_embed", (n, d)),
             _copy("query_type", "decoder_patch_query_token_type_embed", (1, 1, d), lambda t: t.reshape(1, d)),
             _copy("quantizer.in_linear.weight", "bottleneck.in_linear.weight", (cfg.codebook_dim, d)),
             _copy("quantizer.in_linear.bias", "bottleneck.in_linear.bias", (cfg.codebook_dim,)),
             _copy("quantizer.codebook.weight", "bottleneck.regularizer.embedding.weight",
                   (cfg.codebook_size, cfg.codebook_dim)),
             _copy("latent_proj.weight", "bottleneck.out_linear.weight", (d, cfg.codebook_dim)),
             _copy("latent_proj.bias", "bottleneck.out_linear.bias", (d,)),
             _copy("out_norm.weight", "final_layer.norm_final.weight", (d,)),
             _copy("out_norm.bias", "final_layer.norm_final.bias", (d,)),
             _copy("out_proj.weight", "final_layer.linear.weight", (out_dim, d)),
             _copy("out_proj.bias", "final_layer.linear.bias", (out_dim,))]
    fixed = {"encoder_patch_pe": ("patch_pe", (1, m, d)), "decoder_patch_query_embed": ("patch_pe", (1, m, d))}
    if cfg.decoder_latent_pe == "learned":
        rules.append(_copy("latent_pe", "decoder_latent_pe", (1, n, d), lambda t: t.reshape(n, d)))
    else:
        fixed["decoder_latent_pe"] = ("latent_pe", (1, n, d))
    for part, depth in (("encoder", cfg.enc_depth), ("decoder", cfg.dec_depth)):
        for i in range(depth):
            rules += _vit_block(f"{part}.{i}", f"{part}.blocks.{i}", d, hidden)
    if cfg.prior is not None:
        rules += _prior_rules(cfg, official_prior_rows)
    return rules, fixed


def generator_rules(cfg) -> list[Rule]:
    d, f = cfg.width, cfg.ffn_hidden
    rules = [_copy("tok_embeddings.weight", "tok_embeddings.weight", (cfg.token_table_size, d)),
             _copy("abs_pe", "abs_pe", (1, cfg.seq_len, d)),
             _copy("norm.weight", "norm.weight", (d,)),
             _copy("output.weight", "output.weight", (cfg.vocab_size, d))]
    if cfg.mode == "class":
        rules.append(_copy("cls_embedding.weight", "cls_embedding.embedding_table.weight", (cfg.num_classes + 1, d)))
    for i in range(cfg.depth):
        o = f"layers.{i}"
        rules += [_copy(f"{o}.attention.wqkv.weight", f"{o}.attention.wqkv.weight", (3 * d, d)),
                  _copy(f"{o}.attention.wo.weight", f"{o}.attention.wo.weight", (d, d)),
                  _copy(f"{o}.feed_forward.w1.weight", f"{o}.feed_forward.w1.weight", (f, d)),
                  _copy(f"{o}.feed_forward.w3.weight", f"{o}.feed_forward.w3.weight", (f, d)),
                  _copy(f"{o}.feed_forward.w2.weight", f"{o}.feed_forward.w2.weight", (d, f)),
                  _copy(f"{o}.attention_norm.weight", f"{o}.attention_norm.weight", (d,)),
                  _copy(f"{o}.ffn_norm.weight", f"{o}.ffn_norm.weight", (d,))]
    return rules


def apply_rules(state: Mapping[str, torch.Tensor], rules: list[Rule], target: Mapping[str, torch.Tensor],
                fixed: Mapping[str, tuple[str, tuple[int, ...]]] | None = None,
                buffers: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Our state dict from the official ``state`` through ``rules``. Refuses, naming each: an official tensor no rule
    or fixed buffer reads (extra), one a rule needs but ``state`` lacks (missing), a shape other than the rule's, a
    converted tensor whose shape differs from ``target``'s, a target tensor no rule fills, and a fixed buffer whose
    values differ from ``buffers`` (ours)."""
    fixed, buffers = fixed or {}, buffers or {}
    problems: list[str] = []
    used = {name for r in rules for name, _ in r.sources} | set(fixed)
    problems += [f"extra: official tensor {k} {tuple(state[k].shape)} has no place in our model"
                 for k in sorted(set(state) - used)]
    out: dict[str, torch.Tensor] = {}
    for r in rules:
        srcs = []
        for name, shape in r.sources:
            if name not in state:
                problems.append(f"missing: official tensor {name} (expected shape {shape}, for our {r.ours})")
            elif tuple(state[name].shape) != shape:
                problems.append(f"mis-shaped: official tensor {name} has shape {tuple(state[name].shape)}, expected "
                                f"{shape} (for our {r.ours})")
            else:
                srcs.append(state[name])
        if len(srcs) != len(r.sources):
            continue
        value = r.convert(*srcs)
        if r.ours not in target:
            problems.append(f"unmapped: rule target {r.ours} is not a tensor of our model")
        elif tuple(value.shape) != tuple(target[r.ours].shape):
            problems.append(f"mis-shaped: our {r.ours} needs {tuple(target[r.ours].shape)} but {r.sources[0][0]} "
                            f"gives {tuple(value.shape)}")
        else:
            out[r.ours] = value.to(target[r.ours].dtype).contiguous()
    problems += [f"unmapped: our tensor {k} {tuple(target[k].shape)} gets no official tensor"
                 for k in sorted(set(target) - {r.ours for r in rules})]
    for name, (ours, shape) in sorted(fixed.items()):
        if name not in state:
            problems.append(f"missing: official buffer {name} (expected shape {shape})")
        elif tuple(state[name].shape) != shape:
            problems.append(f"mis-shaped: official buffer {name} has shape {tuple(state[name].shape)}, expected {shape}")
        else:
            diff = (state[name].float().reshape(buffers[ours].shape) - buffers[ours].float()).abs().max().item()
            if not diff <= FIXED_PE_TOL:
                problems.append(f"fixed buffer {name} differs from our sin-cos table {ours} by up to {diff:.3g} "
                                f"(> {FIXED_PE_TOL}): not the official fixed positional encoding")
    if problems:
        raise StageError(f"official checkpoint does not map onto our model ({len(problems)} problem(s)):\n  - "
                         + "\n  - ".join(problems))
    return out


# ---------------------------------------------------------------------------------------------------------------
# the stage


def convert_tokenizer(src: OfficialSource):
    """(our LARPTokenizer with the official weights, notes) from a read source."""
    from .tokenizer.model import LARPTokenizer

    cfg = tokenizer_config(src.config)
    # the official prior's position table has max_seq_len rows (1024 in the released config); the shape check of
    # apply_rules names a table of any other size
    rows = int((src.config["prior_model"].get("args") or {}).get("max_seq_len", 1024))
    rules, fixed = tokenizer_rules(cfg, rows)
    model = LARPTokenizer(cfg)
    buffers = dict(model.named_buffers())
    state = apply_rules(src.state, rules, model.state_dict(), fixed, buffers)
    model.load_state_dict(state, strict=True)
    notes = [f"{r.ours}: {r.note}" for r in rules if r.note] + [
        f"{name}: fixed buffer checked against our {ours} (not copied)" for name, (ours, _) in sorted(fixed.items())]
    return model.eval(), notes


def convert_generator(src: OfficialSource):
    """(our ARGenerator with the official weights, notes) from a read source."""
    from .generator.model import ARGenerator

    cfg = generator_config(src.config)
    rules = generator_rules(cfg)
    model = ARGenerator(cfg)
    state = apply_rules(src.state, rules, model.state_dict())
    model.load_state_dict(state, strict=True)
    return model.eval(), [f"{r.ours}: {r.note}" for r in rules if r.note]


def provenance(src: OfficialSource, kind: str, notes: list[str]) -> dict[str, Any]:
    return {"source": src.source, "revision": src.revision, "kind": kind, "files_sha256": src.digests,
            "official_config": src.config, "tensors": len(src.state), "notes": notes}


__all__ = ["OfficialSource", "Rule", "apply_rules", "convert_generator", "convert_tokenizer", "detect_kind",
           "fetch_hf", "generator_config", "official_entry_json", "official_targets", "generator_rules", "read_source",
           "tokenizer_config", "tokenizer_rules"]
