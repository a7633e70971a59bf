"""Configuration of the LARP tokenizer, its AR prior and its discriminator, with their shape checks.

Plain dataclasses, importable without torch: the parameter validation (larp.config, run at every Snakemake parse)
builds every variant's configuration with them, so a shape rule has one definition. The model modules re-export
them (larp.tokenizer.model.TokenizerConfig / check_vit_shape, larp.tokenizer.prior.PriorConfig,
larp.tokenizer.losses.DiscriminatorConfig, larp.tokenizer.encode.check_context); the presets and
``build_config`` live in larp.tokenizer.presets. :class:`TokenizerTraining` is the typed view of the training keys of
the ``tokenizer`` params section that larp.tokenizer.train reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from larp.dictconfig import DictIO, SectionView



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
class TokenizerConfig(DictIO):
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


# ---------------------------------------------------------------------------------------------------------------
# training settings: the typed view of a params section

@dataclass(frozen=True)
class TokenizerLoss:
    """The ``tokenizer.loss`` section: weights of the terms of L = l1·L1 + mse·MSE + lpips·LPIPS + quant·L_SVQ +
    gan·L_G (+ prior_weight·α·L_prior, paper Eq. 8) and when / how the discriminator trains."""

    l1_weight: float      # L1 reconstruction (paper A.1: 1)
    mse_weight: float     # squared-error reconstruction (paper / official: 0)
    lpips_weight: float   # LPIPS perceptual loss (paper 1; 0 = not computed, no VGG weights needed)
    quant_weight: float   # x the SVQ loss (commitment + codebook terms)
    gan_weight: float     # adversarial generator loss (paper 0.3); 0 = no discriminator at all
    gan_start: int        # step from which the GAN terms (both sides) are on
    lecam_weight: float   # LeCam regulariser of the discriminator loss, applied once
    disc_every: int       # one discriminator update every this many tokenizer updates
    disc_lr_mult: float   # discriminator lr = this x the tokenizer's scheduled lr


@dataclass(frozen=True)
class DiscriminatorSize:
    """The ``tokenizer.discriminator`` section: the ViT discriminator's size. Its clip geometry and patchify come
    from the tokenizer (:class:`DiscriminatorConfig` takes both)."""

    width: int
    depth: int
    heads: int


@dataclass(frozen=True)
class TokenizerTraining(SectionView):
    """How a tokenizer trains: the training keys of the resolved ``tokenizer`` params section (larp.tokenizer.train).

    Built once with :meth:`from_section`; the keys it does not own are listed in :data:`TOKENIZER_OTHER_KEYS`.
    """

    SECTION = "tokenizer"

    # length and batch: optimisation steps; global batch of clips, split over the torchrun processes
    steps: int
    batch_size: int
    # Adam and its schedule: base lr and betas; linear warm-up from min_lr_mult x lr over warmup_steps, then cosine
    # decay to min_lr_mult x lr at the last step (larp.training.lr_multiplier)
    lr: float
    betas: tuple[float, float]
    warmup_steps: int
    min_lr_mult: float
    # AR prior: its lr is prior_lr_mult x lr, under the schedule when prior_lr_mult_scheduled (paper), else the
    # schedule overwrites the multiplier (official trainer, facts §8.1); prior_weight is α of Eq. 8. Its loss is off
    # before prior_start_frac of training, then ramps linearly to 1 over prior_ramp_frac (both 0: always 1, the
    # paper). At small scale the prior, whose loss is easiest to lower by making every token the same code,
    # collapses the codebook before the reconstruction has formed; starting it later lets the codes carry content
    # first (README "Embedded default").
    prior_lr_mult: float
    prior_lr_mult_scheduled: bool
    prior_weight: float
    prior_start_frac: float
    prior_ramp_frac: float
    # scheduled sampling of the prior: 2 forward rounds (1 = the "no scheduled sampling" ablation), the mixing rate
    # peaking at ss_peak at ss_peak_frac of training (larp.tokenizer.prior.ss_rate)
    ss_rounds: int
    ss_peak: float
    ss_peak_frac: float
    # quantisation: argmax SVQ in training (the "deterministic quantization" ablation); codebook init "kaiming"
    # (official) or "kmeans" of the encoder outputs of codebook_init_clips clips
    deterministic_quantization: bool
    codebook_init: str
    codebook_init_clips: int
    # data: random horizontal flip per clip; DataLoader worker processes (0 = load in the training process)
    flip: bool
    num_workers: int
    # routing warm-up (holistic only): an extra attention-logit bias between each token and its patches, on top of
    # the model's own routing_bias, decaying linearly from routing_warmup_bias to 0 at routing_frac of training
    routing_warmup_bias: float
    routing_frac: float
    # bf16 autocast on CPU: True, False or "auto" (only where the CPU has bf16 matrix units; larp.runtime)
    cpu_bf16: bool | str
    # steps between resumable checkpoints and between logged training metrics
    checkpoint_every: int
    log_every: int
    # loss weights and the discriminator's size
    loss: TokenizerLoss
    discriminator: DiscriminatorSize


# Keys of the ``tokenizer`` section that TokenizerTraining does not own, and who reads them instead.
TOKENIZER_OTHER_KEYS: dict[str, str] = {
    "seed": "the stage's seed (larp.runtime.stage_seed)",
    "preset": "the model: build_config -> TokenizerConfig",
    "model": "the model: build_config -> TokenizerConfig",
    "prior": "the model: build_config -> PriorConfig",
    "use_prior": "the model: build_config (no prior when false)",
    "train_datasets": "the workflow: which clip stores are trained on",
    "val_dataset": "the workflow: which clip store validates",
    "eval_clips": "the stage's validation after training (run_train_tokenizer)",
}
