"""LARP video tokenizer: holistic query-based ViT tokenizer and the patchwise baseline.

References
- Paper: Wang et al., "LARP: Tokenizing Videos with a Learned Autoregressive Generative Prior", ICLR 2025,
  §3.2 (holistic tokenization, Eq. 3-5), §4.1 (sizes), App. A.1 (positional encodings). Patchwise baseline:
  paper Fig. 2a.
- Official code, read for facts only (hywang66/LARP; docs/official-code-facts.md §1):
  `models/larp_tokenizer.py`, `models/embed.py`, `models/transformer.py`, `models/bottleneck.py`.

Layout, bottom-up: positional encodings -> patch embedding / ViT block -> LARPTokenizer. The configuration
(TokenizerConfig, check_vit_shape) lives in the torch-free larp.tokenizer.config and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# defined torch-free there (params validation); re-exported
from larp.tokenizer.config import PriorConfig, TokenizerConfig, check_vit_shape  # noqa: F401
from larp.tokenizer.prior import ARPrior, PriorOutput
from larp.tokenizer.quantizer import SVQ, QuantizerOutput

# ----------------------------------------------------------------------------------------------------------
# Fixed sin-cos positional encodings (facts §1 "Positional encodings"; `models/embed.py`)


def sincos_1d(dim: int, positions: Tensor, base: float = 10000.0) -> Tensor:
    """(M,) positions -> (M, dim): ω_i = 1 / base^(2i/dim) for i < dim/2, [sin(pω), cos(pω)], sin half first."""
    if dim % 2:
        raise ValueError(f"expected an even sin-cos dimension but found {dim}")
    omega = 1.0 / base ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # (dim/2,)
    angles = positions.double()[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> Tensor:
    """(t*h*w, dim) fixed 3D PE, t-major: MAE 2D sin-cos over (h, w) (first half of the channels encodes
    the column w, second half the row h, as MAE's meshgrid(w, h)) PLUS a 1D sin-cos over t using all
    channels; summed, not concatenated (`get_3d_sincos_pos_embed`, embed.py)."""
    if dim % 4:
        raise ValueError(f"3D sin-cos PE needs a width divisible by 4 but found {dim}")
    t, h, w = grid
    emb_w = sincos_1d(dim // 2, torch.arange(w))  # (w, dim/2)
    emb_h = sincos_1d(dim // 2, torch.arange(h))  # (h, dim/2)
    emb_hw = torch.cat([emb_w[None, :, :].expand(h, -1, -1), emb_h[:, None, :].expand(-1, w, -1)], dim=-1)
    emb = emb_hw[None] + sincos_1d(dim, torch.arange(t))[:, None, None, :]  # (t, h, w, dim)
    return rearrange(emb, "t h w d -> (t h w) d")


# ----------------------------------------------------------------------------------------------------------
# Building blocks


class PatchEmbed3D(nn.Module):
    """Linear patchify (paper Eq. 3): each (patch_t, patch_s, patch_s) patch, flattened as (c, pt, p1, p2),
    through one Linear with bias. This equals the official Conv3d with kernel = stride = patch (its weight
    flattened to (out, in*k)), including its init: xavier-uniform on that flattened weight, bias 0
    (facts §1 "Patchify"); it is faster on CPU, mainly when gradients flow to the video (discriminator).
    Output tokens in (t, h, w) order, t slowest."""

    def __init__(self, patch_t: int, patch_s: int, width: int) -> None:
        super().__init__()
        self.patch_t, self.patch_s = patch_t, patch_s
        self.proj = nn.Linear(3 * patch_t * patch_s * patch_s, width)

    def forward(self, video: Tensor) -> Tensor:
        pt, p = self.patch_t, self.patch_s
        patches = rearrange(video, "b c (t pt) (h p1) (w p2) -> b (t h w) (c pt p1 p2)", pt=pt, p1=p, p2=p)
        return self.proj(patches)  # (B, m, D)


class Attention(nn.Module):
    """Bidirectional multi-head self-attention: fused qkv Linear without bias, SDPA, output proj with bias."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x (B, L, D); bias: optional additive (L, L) attention-logit bias (the routing curriculum)."""
        q, k, v = rearrange(self.qkv(x), "b l (k h d) -> k b h l d", k=3, h=self.heads)
        mask = None if bias is None else bias.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, L, head_dim)
        return self.proj(rearrange(y, "b h l d -> b l (h d)"))


class Block(nn.Module):
    """Pre-LN ViT block as timm's `Block(qkv_bias=False)`: LN eps 1e-5, MLP ratio 4, exact GELU, no dropout
    (facts §1 "Encoder / decoder")."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


def xavier_init_linears(module: nn.Module) -> None:
    """Every nn.Linear in `module`: xavier-uniform weight, bias 0 (official `initialize_weights`)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def routing_masks(num_patches: int, num_tokens: int) -> tuple[Tensor, Tensor]:
    """0/1 (L, L) masks, L = m + n, of the routing curriculum: patch j (raster order) belongs to token j*n // m.
    Encoder sequence [patches, queries]: query i's row marks its patches. Decoder sequence [latents, patch
    queries]: patch query j's row marks its token. Rows of other tokens are 0 (no bias)."""
    m, n = num_patches, num_tokens
    owner = torch.arange(m) * n // m  # (m,) token of each patch
    enc = torch.zeros(m + n, m + n)
    enc[m + owner, torch.arange(m)] = 1.0
    dec = torch.zeros(n + m, n + m)
    dec[n + torch.arange(m), owner] = 1.0
    return enc, dec


@dataclass
class TokenizerOutput:
    """recon (B, 3, T, H, W), un-clamped; quant: the SVQ output of the encoder."""

    recon: Tensor
    quant: QuantizerOutput


# ----------------------------------------------------------------------------------------------------------
# Tokenizer


class LARPTokenizer(nn.Module):
    """Holistic LARP tokenizer (paper Eq. 4-5) or the patchwise baseline (paper Fig. 2a), with optional prior.

    holistic: encoder over concat(patches + 3D PE, n learned queries), keep the n query outputs -> SVQ ->
        Linear(d'->D) + latent PE; decoder over concat(latents, patch queries = 3D PE + learned type vector),
        keep the m patch outputs -> LN(1e-6) + zero-init Linear -> unpatchify.
    patchwise: encoder over patches only; all m outputs are quantised (raster t, h, w order); decoder over
        Linear(d'->D)(latents) + 3D PE.
    The official code concatenates [context, queries] and keeps the last outputs (transformer.py); attention
    is bidirectional, so this equals the paper's Q || E order.
    """

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.holistic = cfg.kind == "holistic"
        d, n = cfg.width, cfg.num_latents
        self.patch_embed = PatchEmbed3D(cfg.patch_t, cfg.patch_s, d)
        self.register_buffer("patch_pe", sincos_3d(d, cfg.grid), persistent=False)  # (m, D)
        self.encoder = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.enc_depth))
        self.quantizer = SVQ(
            d, cfg.codebook_size, cfg.codebook_dim, cfg.svq_temperature, cfg.commit_weight, cfg.codebook_weight
        )
        self.latent_proj = nn.Linear(cfg.codebook_dim, d)  # official bottleneck `out_linear`
        if self.holistic:
            self.queries = nn.Parameter(torch.empty(n, d))  # holistic queries Q_L (n, D)
            self.query_type = nn.Parameter(torch.empty(1, d))  # decoder patch-query token-type vector
            if cfg.decoder_latent_pe == "learned":
                self.latent_pe = nn.Parameter(torch.empty(n, d))
            else:
                self.register_buffer("latent_pe", sincos_1d(d, torch.arange(n)), persistent=False)  # (n, D)
        self.decoder = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.dec_depth))
        self.out_norm = nn.LayerNorm(d, eps=1e-6)
        self.out_proj = nn.Linear(d, cfg.patch_t * cfg.patch_s * cfg.patch_s * 3)
        self.prior = ARPrior(cfg.prior, cfg.codebook_dim, n) if cfg.prior is not None else None
        # Routing bias (holistic only; 0 = the official model): an additive attention-logit bias from holistic query
        # i to its patches in the encoder and from each decoder patch query to its token. At init every query
        # attends uniformly, so all tokens get the same gradient and stay one vector per clip; the bias breaks that
        # symmetry (README "Embedded default"). `routing_bias` is the value in effect: cfg.routing_bias, plus the
        # trainer's decaying warm-up extra during training.
        self.routing_bias = cfg.routing_bias
        if self.holistic:
            enc_mask, dec_mask = routing_masks(cfg.num_patches, n)
            self.register_buffer("enc_route", enc_mask, persistent=False)
            self.register_buffer("dec_route", dec_mask, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """Official `initialize_weights` (facts §1), the prior excluded (it initialises itself, see PriorConfig)."""
        for name, child in self.named_children():
            if name != "prior":
                xavier_init_linears(child)
        if self.holistic:
            nn.init.normal_(self.queries, std=0.02)
            nn.init.normal_(self.query_type, std=0.02)
            if isinstance(self.latent_pe, nn.Parameter):
                nn.init.normal_(self.latent_pe, std=0.02)
        with torch.no_grad():
            self.latent_proj.weight.mul_(self.cfg.latent_proj_gain)
            self.patch_embed.proj.weight.mul_(self.cfg.patch_embed_gain)
        if self.cfg.zero_init_output:
            nn.init.zeros_(self.out_proj.weight)  # zero output layer: black video at init
            nn.init.zeros_(self.out_proj.bias)

    def _check_video(self, video: Tensor) -> None:
        c = self.cfg
        expected = (3, c.frames, c.resolution, c.resolution)
        if video.ndim != 5 or tuple(video.shape[1:]) != expected:
            raise ValueError(f"expected video (B, {', '.join(map(str, expected))}) but found {tuple(video.shape)}")

    def _encoder_latents(self, video: Tensor) -> Tensor:
        """video (B, 3, T, H, W) -> the n encoder outputs that get quantised, (B, n, D) (paper Eq. 4)."""
        self._check_video(video)
        x = self.patch_embed(video) + self.patch_pe  # (B, m, D)
        bias = None
        if self.holistic:
            x = torch.cat([x, self.queries.expand(x.shape[0], -1, -1)], dim=1)  # (B, m + n, D)
            bias = self.routing_bias * self.enc_route if self.routing_bias else None
        for block in self.encoder:
            x = block(x, bias)
        return x[:, -self.cfg.num_latents :]

    def encode(self, video: Tensor, deterministic: bool = False) -> QuantizerOutput:
        """video (B, 3, T, H, W) in [0, 1] -> QuantizerOutput with n tokens (paper Eq. 4)."""
        return self.quantizer(self._encoder_latents(video), deterministic)  # (B, n, D) -> SVQ

    @torch.no_grad()
    def init_codebook_from_data(self, video: Tensor, generator: torch.Generator | None = None) -> None:
        """Initialise the SVQ codebook from this encoder's outputs on ``video`` (see SVQ.init_from_data)."""
        self.quantizer.init_from_data(self._encoder_latents(video), generator)

    def decode(self, z_q: Tensor) -> Tensor:
        """z_q (B, n, d') unit vectors -> reconstruction (B, 3, T, H, W), un-clamped (paper Eq. 5)."""
        n = self.cfg.num_latents
        if z_q.ndim != 3 or tuple(z_q.shape[1:]) != (n, self.cfg.codebook_dim):
            raise ValueError(f"expected latents (B, {n}, {self.cfg.codebook_dim}) but found {tuple(z_q.shape)}")
        x = self.latent_proj(z_q)  # (B, n, D)
        bias = None
        if self.holistic:
            patch_queries = (self.patch_pe + self.query_type).expand(x.shape[0], -1, -1)  # (B, m, D)
            x = torch.cat([x + self.latent_pe, patch_queries], dim=1)  # (B, n + m, D)
            bias = self.routing_bias * self.dec_route if self.routing_bias else None
        else:
            x = x + self.patch_pe
        for block in self.decoder:
            x = block(x, bias)
        patches = self.out_proj(self.out_norm(x[:, -self.cfg.num_patches :]))  # (B, m, pt*p*p*3)
        t, h, w = self.cfg.grid
        return rearrange(
            patches,
            "b (t h w) (pt p1 p2 c) -> b c (t pt) (h p1) (w p2)",
            t=t, h=h, w=w, pt=self.cfg.patch_t, p1=self.cfg.patch_s, p2=self.cfg.patch_s, c=3,
        )  # (B, 3, T, H, W): channels last per patch, t-major grid (facts §1 "Unpatchify")

    @torch.no_grad()
    def reconstruct(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(reconstruction clamped to [0, 1], token ids) with deterministic (argmax) SVQ: how a trained tokenizer is
        scored (official `eval_larp_tokenizer.py --det`, facts §6 rFVD)."""
        quant = self.encode(video, deterministic=True)
        return self.decode(quant.z_q).float().clamp(0, 1), quant.indices

    def decode_indices(self, indices: Tensor) -> Tensor:
        """(B, n) token ids -> (B, 3, T, H, W): codebook lookup, l2-normalise, decode (`decode_from_bottleneck`)."""
        return self.decode(self.quantizer.lookup(indices))

    def forward(self, video: Tensor, deterministic: bool = False) -> TokenizerOutput:
        quant = self.encode(video, deterministic)
        return TokenizerOutput(self.decode(quant.z_q), quant)

    def prior_loss(self, quant: QuantizerOutput, ss_rate: float, n_rounds: int = 2) -> PriorOutput:
        """NLL of the AR prior on this batch's tokens with scheduled sampling (paper §3.3, Eq. 8's L_prior)."""
        if self.prior is None:
            raise RuntimeError("prior_loss called on a tokenizer built with prior=None (the no-prior ablation)")
        return self.prior.loss(quant.z_q, quant.indices, self.quantizer.unit_codebook().detach(), ss_rate, n_rounds)
