"""Named tokenizer configurations, parameter counting and a matmul FLOP estimate.

Paper sizes (Table 1 / Fig. 3: LARP-L 173.0M, LARP-B 116.3M, LARP-S 39.8M tokenizer parameters) are not in
the official code; facts §1/§8.4/§9 infer them as (d 768, 12+12), (768, 8+8), (512, 6+6) blocks plus one
extra 1024 x d tensor, most plausibly a learned decoder latent PE, hence decoder_latent_pe="learned" below.
The counts exclude the AR prior and the discriminator.

Importable without torch (the parameter validation, run at every Snakemake parse, resolves presets with
:func:`build_config`): torch and the model are imported only by the functions that build a model.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from larp.tokenizer.config import DiscriminatorConfig, PriorConfig, TokenizerConfig

if TYPE_CHECKING:
    from torch import nn


def count_parameters(module: nn.Module, include_prior: bool = False) -> int:
    """Number of parameters of `module`, excluding those named "prior.*" unless `include_prior`."""
    return sum(p.numel() for name, p in module.named_parameters() if include_prior or not name.startswith("prior."))


def count_config_parameters(cfg: TokenizerConfig, include_prior: bool = False) -> int:
    """Parameter count of a tokenizer built from `cfg` on the meta device (no memory, no init cost)."""
    import torch

    from larp.tokenizer.model import LARPTokenizer

    with torch.device("meta"):
        return count_parameters(LARPTokenizer(cfg), include_prior)


def get_preset(name: str, **overrides: object) -> TokenizerConfig:
    """A fresh copy of preset `name` with dataclass fields overridden (presets themselves are never mutated)."""
    if name not in TOKENIZER_PRESETS:
        raise KeyError(f"unknown tokenizer preset {name!r}; expected one of {sorted(TOKENIZER_PRESETS)}")
    return dataclasses.replace(copy.deepcopy(TOKENIZER_PRESETS[name]), **overrides)


def build_config(section: Mapping[str, Any], clips: Mapping[str, Any]) -> TokenizerConfig:
    """Preset + ``model`` overrides + clip geometry (+ prior overrides, or no prior) -> TokenizerConfig."""
    base = TOKENIZER_PRESETS[section["preset"]]
    cfg = dataclasses.replace(base, **dict(section["model"]), frames=clips["frames"], resolution=clips["resolution"])
    if section["use_prior"]:
        prior = dataclasses.replace(cfg.prior or PriorConfig(), **dict(section["prior"]))
    else:
        prior = None
    return dataclasses.replace(cfg, prior=prior)


def _vit_flops(length: int, width: int, depth: int, mlp_ratio: float = 4.0) -> float:
    """Forward matmul FLOPs (2 per multiply-add) of `depth` transformer blocks on one sequence: qkv, scores,
    attention x values, output projection, MLP. Causal masks are ignored (counted as full attention)."""
    hidden = int(width * mlp_ratio)
    per_block = 2 * length * width * (3 * width + width + 2 * hidden) + 4 * length * length * width
    return float(depth * per_block)


def estimate_flops(
    cfg: TokenizerConfig, batch: int, disc: DiscriminatorConfig | None = None, prior_rounds: int = 2
) -> dict[str, float]:
    """Forward matmul FLOPs per batch: encoder (incl. patchify), quantizer (in-projection and the
    similarities to all codes), decoder (incl. latent projection and output layer), prior (`prior_rounds`
    forward rounds incl. logits over the codebook; 0 without a prior), discriminator (one forward over the
    batch; 0 when `disc` is None), and their total. Norms, softmax and element-wise ops are not counted."""
    m, n, d, dc, k = cfg.num_patches, cfg.num_latents, cfg.width, cfg.codebook_dim, cfg.codebook_size
    patch_values = cfg.patch_t * cfg.patch_s * cfg.patch_s * 3
    enc_len = m + n if cfg.kind == "holistic" else m
    flops = {
        "encoder": 2 * m * patch_values * d + _vit_flops(enc_len, d, cfg.enc_depth, cfg.mlp_ratio),
        "quantizer": 2 * n * d * dc + 2 * n * dc * k,
        "decoder": 2 * n * dc * d + _vit_flops(enc_len, d, cfg.dec_depth, cfg.mlp_ratio) + 2 * m * d * patch_values,
        "prior": 0.0,
        "discriminator": 0.0,
    }
    if cfg.prior is not None:
        p, length = cfg.prior, n - 1
        per_round = 2 * length * dc * p.width * 2 + _vit_flops(length, p.width, p.depth) + 2 * length * dc * k
        flops["prior"] = prior_rounds * per_round
    if disc is not None:
        dm = disc.grid[0] * disc.grid[1] * disc.grid[2]
        dvals = disc.patch_t * disc.patch_s * disc.patch_s * 3
        disc_blocks = _vit_flops(dm + 1, disc.width, disc.depth)  # + 1: the CLS token
        flops["discriminator"] = 2 * dm * dvals * disc.width + disc_blocks + 2 * disc.width
    flops = {key: float(batch * value) for key, value in flops.items()}
    flops["total"] = sum(flops.values())
    return flops


def _paper(width: int, heads: int, depth: int) -> TokenizerConfig:
    """Paper-scale preset: 16x128x128 clips, 4x8x8 patches, 1024 tokens, 8192 x 8 codebook (paper §4.1)."""
    return TokenizerConfig(width=width, heads=heads, enc_depth=depth, dec_depth=depth, decoder_latent_pe="learned")


TOKENIZER_PRESETS: dict[str, TokenizerConfig] = {
    "larp-L": _paper(768, 12, 12),  # 173.0M (paper); code config d 768, 12+12 blocks (facts §1)
    "larp-B": _paper(768, 12, 8),  # 116.3M (paper); inferred 768, 8+8 (facts §9)
    "larp-S": _paper(512, 8, 6),  # 39.8M (paper); inferred 512, 6+6, 8 heads (facts §1)
    # Small CPU preset for the embedded pipeline: the real method at 16x64x64 with 256 patches. Head dim 64 as
    # in every paper-scale model (and gptc-S): 2 heads train ~7 % faster on CPU than 4 (bench_tokenizer.py).
    "embedded": TokenizerConfig(
        frames=16, resolution=64, patch_t=4, patch_s=8, width=128, heads=2, enc_depth=4, dec_depth=4,
        num_tokens=128, codebook_size=1024, codebook_dim=8, prior=PriorConfig(width=128, depth=2, heads=2),
    ),
    # Unit tests: a forward/backward well under a second.
    "tiny": TokenizerConfig(
        frames=8, resolution=16, patch_t=4, patch_s=8, width=32, heads=2, enc_depth=1, dec_depth=1,
        num_tokens=8, codebook_size=64, codebook_dim=4, prior=PriorConfig(width=32, depth=1, heads=2),
    ),
}
# Embedded S / L: the paper's size scaling (S 512 wide 6+6 blocks, B 768 8+8, L 768 12+12; module docstring) applied to
# "embedded" (the B analogue, 128 wide 4+4): S 3/4 as wide and deep (96, 3+3; head dim 48), L 1.5x as deep (6+6).
# Prior and everything else as "embedded", so sizes differ only in the encoder/decoder. Tokenizer parameters at the
# embedded default (64 tokens, 512 codes): S 0.83M, B 1.80M, L 2.59M = 0.46x / 1.44x of B (paper 0.34x / 1.49x).
TOKENIZER_PRESETS["embedded-S"] = dataclasses.replace(TOKENIZER_PRESETS["embedded"], width=96, enc_depth=3, dec_depth=3)
TOKENIZER_PRESETS["embedded-L"] = dataclasses.replace(TOKENIZER_PRESETS["embedded"], enc_depth=6, dec_depth=6)
