"""LARP's continuous autoregressive prior with scheduled sampling (paper §3.3, §4.1; facts §3).

A small GPT-2-style decoder-only transformer reads the tokenizer's straight-through quantised unit vectors
(continuous, so the NLL reaches the encoder), predicts a unit vector for the next position, and scores it
against the l2-normalised codebook "following the SVQ scheme" (paper Eq. 6). Scheduled sampling (paper §3.3,
Bengio et al. 2015) feeds a second round with a token-level mix of true and sampled inputs.
Official code (facts only): `models/gptc.py`, `models/larp_tokenizer.py` (prior functions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from larp.tokenizer.config import PriorConfig  # defined torch-free there (params validation); re-exported
from larp.tokenizer.quantizer import sample_categorical


@dataclass
class PriorOutput:
    """Result of `ARPrior.loss`.

    loss: mean over rounds of the token-mean cross-entropy (differentiable).
    acc_top1: next-token top-1 accuracy of round 1 (teacher forced), as the official trainer logs it.
    per_round_loss: CE of each round that ran (1 entry when teacher forcing only).
    ss_mask: (B, n-1) bool, True where round 2 got a sampled input at positions 1..n-1; None if no round 2 ran.
    """

    loss: Tensor
    acc_top1: float
    per_round_loss: list[float]
    ss_mask: Tensor | None


def ss_rate(step: int, max_steps: int, peak: float = 0.5, peak_frac: float = 0.3) -> float:
    """Scheduled-sampling mixing rate: linear 0 -> `peak` over the first `peak_frac` of training, then constant.

    Paper §4.1 ("linear warm-up ... reaching a peak of 0.5 at 30% of the total training steps"); official
    `mix_ss_max_ratio` 0.5, `mix_ss_peak_steps_ratio` 0.3 (facts §3).
    """
    if max_steps <= 0 or peak_frac <= 0:
        raise ValueError(f"expected max_steps > 0 and peak_frac > 0 but found {max_steps} and {peak_frac}")
    return min(peak * step / (peak_frac * max_steps), peak)


class CausalSelfAttention(nn.Module):
    """GPT-2 attention: q/k/v/proj with bias (fused q/k/v, same parameter count as separate layers), causal SDPA."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b l (k h d) -> k b h l d", k=3, h=self.heads)
        # Attention dropout only in training (the official code also applies it in eval, facts §8.11).
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.resid_drop(self.proj(rearrange(y, "b h l d -> b l (h d)")))


class PriorBlock(nn.Module):
    """Pre-LN GPT-2 block: x + attn(LN(x)); x + MLP(LN(x)) with MLP 4x, GELU, residual dropout (gptc.py)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ARPrior(nn.Module):
    """Continuous AR prior (paper §3.3): Linear(d'->w) input, learned abs PE, GPT-2 blocks, final LN,
    Linear(w->d') output, l2-normalised (facts §3). `seq_len` is the tokenizer's token count n."""

    def __init__(self, cfg: PriorConfig, codebook_dim: int, seq_len: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_proj = nn.Linear(codebook_dim, cfg.width)
        self.pos_emb = nn.Parameter(torch.empty(1, seq_len, cfg.width))  # (1, n, w); n-1 positions are used
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(PriorBlock(cfg.width, cfg.heads, cfg.dropout) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, codebook_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.pos_emb, std=0.02)  # gptc.py: randn * 0.02
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if self.cfg.init == "gpt2":
                    nn.init.normal_(m.weight, std=0.02)
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, d') continuous inputs -> (B, L, d') unit vectors predicting positions 1..L."""
        length = x.shape[1]
        if length > self.pos_emb.shape[1]:
            raise ValueError(f"expected at most {self.pos_emb.shape[1]} prior inputs but found {length}")
        h = self.drop(self.input_proj(x) + self.pos_emb[:, :length])  # (B, L, w)
        for block in self.blocks:
            h = block(h)
        return F.normalize(self.head(self.ln_f(h)), dim=-1)

    def logits(self, x: Tensor, codebook: Tensor) -> Tensor:
        """(B, L, d') inputs, (K, d') detached unit codebook -> (B, L, K) = cos(pred, code) / T, in fp32."""
        pred = self(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return pred.float() @ codebook.float().t() / self.cfg.logit_temperature

    def loss(self, z_q: Tensor, indices: Tensor, codebook: Tensor, ss_rate: float, n_rounds: int = 2) -> PriorOutput:
        """Teacher-forced NLL plus token-level scheduled sampling (paper §3.3; facts §3 "Scheduled sampling").

        z_q (B, n, d') straight-through unit vectors (gradient reaches the encoder); indices (B, n) the
        tokenizer's sampled SVQ ids (targets for positions 1..n-1); codebook (K, d') l2-normalised and
        DETACHED, so the prior never updates the codebook. Round 1 feeds the true inputs 0..n-2. Every
        later round samples ids (categorical on fp32 probabilities, no grad) from the previous round's
        logits, embeds them with the codebook, and replaces the true input at positions 1..n-1 where a
        per-(sample, position) Bernoulli(ss_rate) mask is set (position 0 always stays true; the mask is
        shared by all rounds; as in the official code, position n-1 is never an input, so its entry is unused).
        The loss is the mean of the rounds' CEs against the same targets. `n_rounds == 1` or
        `ss_rate == 0` runs teacher forcing only.
        """
        if codebook.requires_grad:
            raise ValueError("expected a detached codebook (the prior must not update it); pass codebook.detach()")
        batch, n, _ = z_q.shape
        if n < 2:
            raise ValueError(f"the AR prior needs at least 2 tokens per sequence but found {n}")
        if n_rounds < 1:
            raise ValueError(f"expected n_rounds >= 1 but found {n_rounds}")
        targets = indices[:, 1:]  # (B, n-1)
        logits = self.logits(z_q[:, :-1], codebook)  # (B, n-1, K): round 1, teacher forced
        acc_top1 = (logits.detach().argmax(-1) == targets).float().mean().item()
        round_losses = [F.cross_entropy(rearrange(logits, "b l k -> (b l) k"), targets.reshape(-1))]
        mask = None
        if n_rounds > 1 and ss_rate > 0:
            mask = torch.rand(batch, n - 1, device=z_q.device) < ss_rate  # (B, n-1) for positions 1..n-1
            for _ in range(n_rounds - 1):
                with torch.no_grad():
                    sampled = sample_categorical(logits.float().softmax(-1))  # (B, n-1)
                mixed = torch.where(mask[..., None], F.embedding(sampled, codebook), z_q[:, 1:])  # (B, n-1, d')
                inputs = torch.cat([z_q[:, :1], mixed[:, :-1]], dim=1)  # (B, n-1, d'): positions 0..n-2
                logits = self.logits(inputs, codebook)
                round_losses.append(F.cross_entropy(rearrange(logits, "b l k -> (b l) k"), targets.reshape(-1)))
        loss = torch.stack(round_losses).mean()
        return PriorOutput(loss, acc_top1, [r.item() for r in round_losses], mask)
