"""Reconstruction and adversarial losses of the LARP tokenizer (paper §3.2 "Reconstructive Training", App. A.1).

L1 + LPIPS (VGG) + non-saturating GAN loss with a ViT video discriminator, one-sided noisy label smoothing
and LeCam regularisation (Tseng et al. 2021, https://arxiv.org/abs/2104.03310).
Official code (facts only): `models/loss.py` (facts §4 "Generator objective", "Discriminator").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from larp.errors import LPIPSUnavailable
from larp.tokenizer.config import DiscriminatorConfig  # defined torch-free there (params validation); re-exported
from larp.tokenizer.model import Block, PatchEmbed3D, sincos_3d, xavier_init_linears

LPIPS_HELP = (
    "LPIPS is unavailable: install the `lpips` extra (pip install -e '.[lpips]') and provide the VGG weights "
    "in the torch hub cache, or set tokenizer.loss.lpips_weight: 0 in params.yaml"
)


def l1_loss(recon: Tensor, video: Tensor) -> Tensor:
    """Mean absolute error per pixel on the [0, 1] scale (`pixelloss_weight` 1.0, facts §4)."""
    return (recon - video).abs().mean()


class PerceptualLoss(nn.Module):
    """Frozen `lpips.LPIPS(net='vgg')`, per frame on (B*T) images in [0, 1] (normalize=True), fp32 (facts §4)."""

    def __init__(self) -> None:
        super().__init__()
        try:
            import lpips

            net = lpips.LPIPS(net="vgg", verbose=False)
        except Exception as err:  # ImportError, or a failed weight download/load inside lpips/torchvision
            raise LPIPSUnavailable(f"{LPIPS_HELP} (cause: {type(err).__name__}: {err})") from err
        self.net = net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stay in eval mode whatever the parent module does (frozen network)."""
        return super().train(False)

    def forward(self, recon: Tensor, video: Tensor) -> Tensor:
        """recon, video (B, 3, T, H, W) -> mean LPIPS over all B*T frames."""
        recon = rearrange(recon.float(), "b c t h w -> (b t) c h w")
        video = rearrange(video.float(), "b c t h w -> (b t) c h w")
        return self.net(recon, video, normalize=True).mean()


class Discriminator(nn.Module):
    """`TransformerDiscriminator` (facts §4): 3D patch embed + fixed 3D sin-cos PE, a learned CLS token
    (xavier) prepended without PE, ViT blocks (qkv without bias), LN(eps 1e-6) on the CLS output, Linear -> 1."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed3D(cfg.patch_t, cfg.patch_s, cfg.width)
        self.register_buffer("pe", sincos_3d(cfg.width, cfg.grid), persistent=False)  # (m, D)
        self.cls = nn.Parameter(torch.empty(1, 1, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.head = nn.Linear(cfg.width, 1)
        xavier_init_linears(self)  # includes the patch embedding (official: conv weight xavier as a Linear)
        nn.init.xavier_uniform_(self.cls)

    def forward(self, video: Tensor) -> Tensor:
        """video (B, 3, T, H, W) in [0, 1] (fakes un-clamped) -> (B,) logits."""
        x = self.patch_embed(video) + self.pe  # (B, m, D)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + m, D)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0])).squeeze(-1)  # (B,)


def smoothed_targets(logits: Tensor, real: bool) -> Tensor:
    """One-sided noisy labels of `ns_smooth` (facts §4): real 1 - |N(0,1)|*0.15 clamped >= 0.7;
    fake |N(0,1)|*0.15 clamped <= 0.3."""
    noise = torch.randn_like(logits, dtype=torch.float32).abs() * 0.15
    return (1.0 - noise).clamp_min(0.7) if real else noise.clamp_max(0.3)


def d_loss_ns_smooth(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss: BCE-with-logits against smoothed targets, real + fake summed (facts §4)."""
    real = F.binary_cross_entropy_with_logits(real_logits.float(), smoothed_targets(real_logits, real=True))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), smoothed_targets(fake_logits, real=False))
    return real + fake


def g_loss_ns(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss -mean(log σ(D(fake))) (facts §4)."""
    return -F.logsigmoid(fake_logits.float()).mean()


class LeCam(nn.Module):
    """LeCam regulariser on batch-mean logits (facts §4): relu(mean D_real - ema_fake)² + relu(ema_real -
    mean D_fake)²; EMAs (decay 0.999, init 0) are buffers updated after use. Returns the UNWEIGHTED reg: the
    trainer applies `lecam_weight` once (the official code applies it twice, facts §8.2)."""

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = real_logits.float().mean(), fake_logits.float().mean()
        reg = F.relu(real - self.ema_fake).pow(2) + F.relu(self.ema_real - fake).pow(2)
        with torch.no_grad():
            self.ema_real.lerp_(real.detach(), 1 - self.decay)
            self.ema_fake.lerp_(fake.detach(), 1 - self.decay)
        return reg
