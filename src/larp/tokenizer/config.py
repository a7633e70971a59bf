"""Configuration of the LARP tokenizer, its AR prior and its discriminator, with their shape checks.

Plain dataclasses, importable without torch: the parameter validation (larp.config, run at every Snakemake parse)
builds every variant's configuration with them, so a shape rule has one definition. The model modules re-export
them (larp.tokenizer.model.TokenizerConfig / check_vit_shape, larp.tokenizer.prior.PriorConfig,
larp.tokenizer.losses.DiscriminatorConfig, larp.tokenizer.encode.check_context); the presets and
``build_config`` live in larp.tokenizer.presets.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields


def check_vit_shape(frames: int, resolution: int, patch_t: int, patch_s: int, width: int, heads: int) -> None:
    """The clip divides into whole 3D patches, and the width into heads and the 4 parts of the 3D sin-cos PE.
    Shared by the tokenizer and the discriminator (which patchifies identically, paper A.1)."""
    if frames % patch_t or resolution % patch_s:
        raise ValueError(f"expected frames divisible by patch_t and resolution by patch_s but found "
                         f"{frames}/{patch_t} and {resolution}/{patch_s}")
    if width % heads or width % 4:
        raise ValueError(f"width must be divisible by heads and by 4 but found {width} (heads {heads})")


@dataclass
class PriorConfig:
    """Size and behaviour of the AR prior; defaults are the official `gptc-S` (facts §3): 21,700,240 params.

    logit_temperature: the prior's logits are cos(pred, code) / logit_temperature. Default 0.03, because the
        paper says the output layer "makes predictions following the SVQ scheme" (§3.3, Eq. 6), and SVQ uses
        τ = 0.03 (§4.1). The official cfg uses 1.0 (`latent_ce_temperature`), which bounds the CE below by
        ≈ 7.0 nats for 8192 codes and makes scheduled-sampling draws nearly uniform (facts §3, §8.3).
        Set 1.0 to reproduce the official behaviour.
    init: "gpt2" = every Linear N(0, 0.02), bias 0 (paper §4.1: "adapted from a small GPT-2"; `gptc.py`);
        "xavier" = the official behaviour, where the tokenizer's xavier init overwrites the prior's Linear
        layers because the prior is built first (facts §1 "Weight init").
    """

    width: int = 384          # gptc-S (facts §3)
    depth: int = 12
    heads: int = 6
    dropout: float = 0.1      # embedding / residual / attention dropout (facts §3), active only in training
    logit_temperature: float = 0.03
    init: str = "gpt2"

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"prior width must be divisible by heads; found width {self.width}, heads {self.heads}")
        if self.init not in ("gpt2", "xavier"):
            raise ValueError(f"prior init must be 'gpt2' or 'xavier' but found {self.init!r}")
        if self.logit_temperature <= 0:
            raise ValueError(f"prior logit_temperature must be > 0 but found {self.logit_temperature}")


@dataclass
class TokenizerConfig:
    """LARP tokenizer hyper-parameters. Defaults = the official LARP-L cfg except the codebook dimension.

    codebook_dim: 8 as the paper (§4.1, "factorized codebook ... 8192 and d' = 8"); the official cfg uses 16.
    decoder_latent_pe: "fixed" 1D sin-cos on the holistic latents (paper A.1, official cfg); "learned"
        (N(0, 0.02)) is the variant that reproduces the paper's parameter counts 173.0/116.3/39.8M
        (facts §8.4/§9). Holistic only: the patchwise decoder always uses the fixed 3D PE.
    prior: None is the "no AR prior" ablation.
    """

    kind: str = "holistic"             # "holistic" (LARP) | "patchwise" (baseline, paper Fig. 2a)
    frames: int = 16                   # clip length T (paper §4.1)
    resolution: int = 128              # H = W (paper §4.1)
    patch_t: int = 4                   # f_T (paper §4.1)
    patch_s: int = 8                   # f_H = f_W (paper §4.1)
    width: int = 768                   # d (official cfg)
    heads: int = 12                    # head dim 64 (official cfg)
    enc_depth: int = 12                # official reproduce script (LARP-L)
    dec_depth: int = 12
    mlp_ratio: float = 4.0             # timm Block
    num_tokens: int = 1024             # holistic queries n (ignored for patchwise: n = number of patches)
    codebook_size: int = 8192          # paper §4.1
    codebook_dim: int = 8              # paper §4.1 (official 16)
    svq_temperature: float = 0.03      # paper §4.1
    commit_weight: float = 0.25        # paper A.1
    codebook_weight: float = 1.0       # paper A.1
    decoder_latent_pe: str = "fixed"   # "fixed" (paper A.1) | "learned" (reproduces the paper's counts)
    zero_init_output: bool = True      # official: output layer zeroed (black video at init, facts §1); False keeps
                                       # its xavier init, so the latents get gradient from the first step
    patch_embed_gain: float = 1.0      # x the xavier init of the patch embedding (official 1). On a small patch grid
                                       # the fixed 3D sin-cos PE is nearly one constant vector (norm ~sqrt(d), its
                                       # position-dependent part a fifth of that), against a patch content of norm ~1
                                       # at init: a gain makes the content visible next to the PE (README "Embedded
                                       # default: departures")
    routing_bias: float = 0.0          # holistic only: additive attention-logit bias between each token and its patches
                                       # (encoder: query -> its patches; decoder: patch query -> its token), kept at
                                       # inference. 0 = the official model; the embedded default's small-scale
                                       # departure (README "Embedded default"); the trainer can add a decaying extra
    latent_proj_gain: float = 1.0      # x the xavier init of the bottleneck out-projection (official `out_linear`: 1).
                                       # Its input is a unit vector, so at init the token content entering the
                                       # decoder has norm ~sqrt(2 d / (d + d')) ≈ 1.4 against the fixed PE's
                                       # sqrt(d / 2) (8 at d = 128): the decoder reads positions, not tokens, and
                                       # Adam at lr 1e-4 needs ~10^4 steps to grow the weights. The paper's 500k steps
                                       # absorb that; the embedded 2k-step run raises the gain (README "Embedded
                                       # default" shows the measurements).
    prior: PriorConfig | None = field(default_factory=PriorConfig)

    def __post_init__(self) -> None:
        if self.kind not in ("holistic", "patchwise"):
            raise ValueError(f"kind must be 'holistic' or 'patchwise' but found {self.kind!r}")
        if self.decoder_latent_pe not in ("fixed", "learned"):
            raise ValueError(f"decoder_latent_pe must be 'fixed' or 'learned' but found {self.decoder_latent_pe!r}")
        check_vit_shape(self.frames, self.resolution, self.patch_t, self.patch_s, self.width, self.heads)
        if not self.latent_proj_gain > 0:
            raise ValueError(f"latent_proj_gain must be > 0 but found {self.latent_proj_gain}")
        if self.routing_bias < 0:
            raise ValueError(f"routing_bias must be >= 0 but found {self.routing_bias}")
        if self.routing_bias and self.kind == "patchwise":
            raise ValueError(f"routing_bias {self.routing_bias} has no meaning for the patchwise tokenizer (each token "
                             f"is its patch); set model.routing_bias: 0.0 for a patchwise variant")
        if not self.patch_embed_gain > 0:
            raise ValueError(f"patch_embed_gain must be > 0 but found {self.patch_embed_gain}")
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1 but found {self.num_tokens}")
        if self.prior is not None and self.num_latents < 2:
            raise ValueError(f"the AR prior needs at least 2 tokens but the tokenizer has {self.num_latents}; "
                             "set prior=None")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Patch grid (t, h, w)."""
        s = self.resolution // self.patch_s
        return self.frames // self.patch_t, s, s

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    @property
    def num_latents(self) -> int:
        """Number of discrete tokens per clip: n (holistic) or the number of patches (patchwise)."""
        return self.num_tokens if self.kind == "holistic" else self.num_patches

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (for self-describing checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TokenizerConfig:
        """Inverse of `to_dict`; rejects unknown keys."""
        d = copy.deepcopy(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TokenizerConfig keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        if d.get("prior") is not None:
            d["prior"] = PriorConfig(**d["prior"])
        return cls(**d)


@dataclass
class DiscriminatorConfig:
    """ViT video discriminator size; defaults = the official reproduce script (512 wide, 12 layers, 8 heads,
    facts §4), patchify as the tokenizer (paper A.1: "identical patchify settings")."""

    width: int = 512
    depth: int = 12
    heads: int = 8
    frames: int = 16
    resolution: int = 128
    patch_t: int = 4
    patch_s: int = 8

    def __post_init__(self) -> None:
        check_vit_shape(self.frames, self.resolution, self.patch_t, self.patch_s, self.width, self.heads)

    @property
    def grid(self) -> tuple[int, int, int]:
        s = self.resolution // self.patch_s
        return self.frames // self.patch_t, s, s


def check_context(context: int, frames: int) -> None:
    """The frame-prediction condition keeps 1 .. ``frames`` frames of a clip (also checked in params validation)."""
    if not 1 <= context <= frames:
        raise ValueError(f"fp_context_frames must be in [1, {frames}], found {context}")
