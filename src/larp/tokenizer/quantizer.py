"""Stochastic vector quantisation (SVQ), paper §3.2 Eq. 6-7 (https://arxiv.org/abs/2410.21264).

Both the projected latent and the codebook are l2-normalised; the cosine similarities divided by a
temperature (0.03, paper §4.1) are a categorical distribution from which one code per token is drawn.
Official code (facts only): `models/bottleneck.py` class `SimpleVectorQuantizer` (facts §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    """indices (B, n) long; z_q (B, n, d') straight-through unit vectors (value = code, grad -> encoder);
    loss = commit_weight * commit_loss + codebook_weight * codebook_loss (the trainer applies loss_q_weight)."""

    indices: Tensor
    z_q: Tensor
    loss: Tensor
    commit_loss: Tensor
    codebook_loss: Tensor


def sample_categorical(probs: Tensor) -> Tensor:
    """One draw per row of `probs` (..., K) -> (...) long: inverse-CDF sampling, searchsorted of a uniform in
    the fp64 cumulative sum. Same distribution as torch.multinomial(probs, 1), ~15x faster on CPU for
    K = 1024 (multinomial draws K exponentials per row)."""
    cdf = probs.double().cumsum(-1)  # (..., K)
    u = torch.rand(cdf.shape[:-1] + (1,), dtype=cdf.dtype, device=cdf.device) * cdf[..., -1:]  # (..., 1)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_max_(probs.shape[-1] - 1)


class SVQ(nn.Module):
    """in_linear (d -> d') + l2-normalised codebook (K, d') sampled at temperature τ.

    Training (and eval unless `deterministic`) draws index ~ softmax(cos(z, E) / τ); `deterministic=True`
    takes the argmax, i.e. the nearest code by cosine (facts §2 "Sampling").
    """

    def __init__(
        self,
        in_dim: int,
        codebook_size: int,
        codebook_dim: int,
        temperature: float = 0.03,
        commit_weight: float = 0.25,
        codebook_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"SVQ temperature must be > 0 but found {temperature}")
        self.temperature = temperature
        self.commit_weight, self.codebook_weight = commit_weight, codebook_weight
        self.in_linear = nn.Linear(in_dim, codebook_dim)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        nn.init.kaiming_uniform_(self.codebook.weight)  # bottleneck.py: kaiming-uniform, bound sqrt(6/d')

    @torch.no_grad()
    def init_from_data(self, h: Tensor, generator: torch.Generator | None = None) -> None:
        """Set the codebook to spherical k-means centroids of z = l2norm(in_linear(h)), h (..., d).

        Not in the paper or the official code (which keeps the kaiming-uniform init, facts §2). At small scale the
        encoder's outputs start inside a narrow cone (a shared component dominates the residual stream), so nearly all
        of them fall on a handful of random codes, the tokens carry no information and the decoder learns the mean
        video; data-dependent initialisation (as vector-quantize-pytorch's `kmeans_init`) spreads the codes over
        that cone so tokens are informative from the first step."""
        z = F.normalize(self.in_linear(h.float()), dim=-1).reshape(-1, self.codebook.weight.shape[1])  # (N, d')
        self.codebook.weight.copy_(spherical_kmeans(z, self.codebook.weight.shape[0], generator=generator))

    def unit_codebook(self) -> Tensor:
        """(K, d') codebook, l2-normalised, fp32."""
        return F.normalize(self.codebook.weight.float(), dim=-1)

    def lookup(self, indices: Tensor) -> Tensor:
        """De-quantise (paper Eq. 7 follow-up): (B, n) ids -> (B, n, d') unit code vectors."""
        return F.embedding(indices, self.unit_codebook())

    def forward(self, h: Tensor, deterministic: bool = False) -> QuantizerOutput:
        """h (B, n, d) -> QuantizerOutput. Runs in fp32 with autocast off (facts §2).

        z = l2norm(in_linear(h)); s = z Eᵀ; p = softmax(s / τ); x ~ p (or argmax); q = E[x];
        z_q = z + sg(q - z); commit = mean((sg(q) - z)²); codebook = mean((q - sg(z))²).
        """
        with torch.autocast(device_type=h.device.type, enabled=False):
            z = F.normalize(self.in_linear(h.float()), dim=-1)  # (B, n, d')
            codes = self.unit_codebook()  # (K, d')
            with torch.no_grad():
                sim = z @ codes.t()  # (B, n, K) cosine similarities
                if deterministic:
                    indices = sim.argmax(-1)  # (B, n)
                else:
                    indices = sample_categorical((sim / self.temperature).softmax(-1))  # (B, n)
            q = F.embedding(indices, codes)  # (B, n, d'), differentiable w.r.t. the codebook
            commit = F.mse_loss(z, q.detach())
            codebook = F.mse_loss(q, z.detach())
            z_q = z + (q - z).detach()
        loss = self.commit_weight * commit + self.codebook_weight * codebook
        return QuantizerOutput(indices, z_q, loss, commit, codebook)


@torch.no_grad()
def spherical_kmeans(z: Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None) -> Tensor:
    """k unit centroids of the unit vectors ``z`` (N, d) by cosine k-means (Lloyd steps on the sphere).

    Starts from k distinct random points (with replacement when N < k); an empty cluster keeps its centroid."""
    n = z.shape[0]
    pick = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(0, n, (k,), generator=generator)
    centroids = z[pick].clone()  # (k, d)
    for _ in range(iters):
        assign = (z @ centroids.t()).argmax(-1)  # (N,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, z)  # (k, d)
        counts = torch.bincount(assign, minlength=k).unsqueeze(-1)  # (k, 1)
        centroids = torch.where(counts > 0, F.normalize(sums, dim=-1), centroids)
    return centroids


def codebook_usage(indices: Tensor, codebook_size: int) -> tuple[float, float]:
    """(fraction of codes used, perplexity exp(H(p))) of the empirical code distribution in `indices`
    (the official trainer logs index usage and perplexity, facts §2 "Logged diagnostics")."""
    counts = torch.bincount(indices.reshape(-1), minlength=codebook_size).double()
    if counts.numel() != codebook_size:
        raise ValueError(f"expected indices < {codebook_size} but found max {int(indices.max())}")
    p = counts[counts > 0] / counts.sum()
    entropy = -(p * p.log()).sum().item()
    return p.numel() / codebook_size, math.exp(entropy)
