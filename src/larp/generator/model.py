"""Llama-like autoregressive generator over LARP's holistic video tokens ("llama-abs").

References (facts only; no code copied):
- LARP paper (Wang et al., ICLR 2025), Sec. 4.1 (one [cls] token for UCF-101 class-conditional generation,
  one [sep] token for K600 frame prediction) and App. A.2 (Llama-like transformer with *absolute learned* PE,
  token / residual / FFN dropout 0.1).
- Official code hywang66/LARP `models/larp_ar.py` (summarised in docs/official-code-facts.md §5): pre-norm RMSNorm
  (eps 1e-5, fp32), fused bias-free QKV, bias-free output projection, causal SDPA, SwiGLU FFN with hidden
  4d*2/3 rounded up to a multiple of 256, learned abs-PE N(0, 0.02^2) over the whole sequence, no RoPE,
  final RMSNorm, zero-initialised bias-free head, all other Linear/Embedding weights N(0, 0.02^2),
  class table with num_classes + 1 rows (null class last), class dropout 0.1.
- Lineage: LlamaGen (FoundationVision/LlamaGen `autoregressive/models/gpt.py`), itself following gpt-fast
  for the static KV cache.

Sequence layouts (n = tokens per video, V = vocab_size):
- class mode: [cls(label), z_0 .. z_{n-2}]                -> n positions, logits at all n predict z_0 .. z_{n-1}
- fp mode:    [c_0 .. c_{n-1}, sep, z_0 .. z_{n-2}]        -> 2n positions, sep id = V, logits from the sep
  position onward (positions n .. 2n-1) predict z_0 .. z_{n-1}; cond and target tokens share one table.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

# defined torch-free there (params validation); re-exported
from larp.generator.config import MODES, GeneratorConfig  # noqa: F401


# ------------------------------------------------------------------------------------------------ layers


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 and cast back to the input dtype, then scaled (LlamaGen / larp_ar.py)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return normed.type_as(x) * self.weight


class KVCache:
    """Static (preallocated) per-layer key/value cache, filled left to right (gpt-fast / LlamaGen design).

    Buffers are (B, heads, max_len, head_dim); `length` counts the filled positions.
    """

    def __init__(self, batch: int, heads: int, max_len: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        self.k = torch.zeros(batch, heads, max_len, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, h, S, Dh) at the next S positions; return the filled keys and values (B, h, L, Dh)."""
        start, end = self.length, self.length + k.shape[2]
        if k.shape[0] != self.k.shape[0]:
            raise ValueError(
                f"KVCache: expected batch {self.k.shape[0]} but found {k.shape[0]}; call setup_cache(batch) again"
            )
        if end > self.k.shape[2]:
            raise ValueError(f"KVCache: expected at most {self.k.shape[2]} positions but writing up to {end}")
        self.k[:, :, start:end] = k.to(self.k.dtype)
        self.v[:, :, start:end] = v.to(self.v.dtype)
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    """Causal multi-head self-attention: fused bias-free QKV, SDPA, bias-free output, residual dropout."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.heads = cfg.heads
        self.wqkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.wo = nn.Linear(cfg.width, cfg.width, bias=False)
        self.resid_dropout = nn.Dropout(cfg.resid_dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x (B, S, D) -> (B, S, D). With a cache, S tokens are appended after the cached positions; this
        supports a prefill at position 0 or one token per step (attention dropout is 0, facts §5)."""
        q, k, v = rearrange(self.wqkv(x), "b s (three h d) -> three b h s d", three=3, h=self.heads)
        start = 0
        if cache is not None:
            start = cache.length
            if start > 0 and x.shape[1] > 1:
                raise ValueError(
                    f"Attention: expected a prefill at position 0 or one token per step but found "
                    f"{x.shape[1]} tokens at cache position {start}"
                )
            k, v = cache.append(k, v)  # (B, h, L, Dh)
        y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), is_causal=start == 0)  # (B, h, S, Dh)
        y = rearrange(y, "b h s d -> b s (h d)")
        return self.resid_dropout(self.wo(y))


class FeedForward(nn.Module):
    """SwiGLU FFN: w2(silu(w1 x) * w3 x), all bias-free, followed by FFN dropout (larp_ar.py FeedForward)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.width, cfg.ffn_hidden, bias=False)  # gate
        self.w3 = nn.Linear(cfg.width, cfg.ffn_hidden, bias=False)  # up
        self.w2 = nn.Linear(cfg.ffn_hidden, cfg.width, bias=False)  # down
        self.ffn_dropout = nn.Dropout(cfg.ffn_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then h + ffn(norm(h)); no drop-path (rate 0)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.width, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.width, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cache)
        return h + self.feed_forward(self.ffn_norm(h))


# ------------------------------------------------------------------------------------------------ model


class ARGenerator(nn.Module):
    """Class-conditional or frame-prediction AR generator (LARP paper Sec. 4.1, App. A.2; larp_ar.py LARP_AR)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.config = cfg
        # class mode: num_classes + 1 rows, null class = last row; fp mode: no class table (larp_ar.py)
        self.cls_embedding = nn.Embedding(cfg.num_classes + 1, cfg.width) if cfg.mode == "class" else None
        self.tok_embeddings = nn.Embedding(cfg.token_table_size, cfg.width)  # fp: +1 row for [sep] = vocab_size
        self.tok_dropout = nn.Dropout(cfg.token_dropout)
        self.abs_pe = nn.Parameter(torch.randn(1, cfg.seq_len, cfg.width) * 0.02)  # learned, no RoPE
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = RMSNorm(cfg.width, cfg.norm_eps)
        self.output = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        self._caches: list[KVCache] | None = None
        self.apply(self._init_weights)
        nn.init.zeros_(self.output.weight)  # zero-initialised head (larp_ar.py initialize_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """N(0, 0.02^2) for every Linear / Embedding weight (initializer_range 0.02); Linear layers have no bias."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # -------------------------------------------------------------------------------- embedding helpers

    def _class_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Map labels < 0 to the null class; in training, also drop each label to null with prob class_dropout
        (LabelEmbedder.token_drop)."""
        cfg = self.config
        if labels.ndim != 1 or labels.dtype != torch.long:
            raise ValueError(
                f"class mode: expected cond = labels (B,) int64 but found {tuple(labels.shape)} {labels.dtype}"
            )
        null = torch.full_like(labels, cfg.num_classes)
        labels = torch.where(labels < 0, null, labels)
        if self.training and cfg.class_dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < cfg.class_dropout
            labels = torch.where(drop, null, labels)
        return labels

    def _embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """Condition embeddings (B, cond_len, D): the class token, or the n condition tokens followed by [sep]."""
        cfg = self.config
        if cfg.mode == "class":
            return rearrange(self.cls_embedding(self._class_labels(cond)), "b d -> b 1 d")
        if cond.ndim != 2 or cond.shape[1] != cfg.num_tokens or cond.dtype != torch.long:
            raise ValueError(
                f"fp mode: expected cond = condition tokens ({cond.shape[0] if cond.ndim else 'B'}, {cfg.num_tokens}) "
                f"int64 but found {tuple(cond.shape)} {cond.dtype}"
            )
        sep = cond.new_full((cond.shape[0], 1), cfg.vocab_size)
        return self.tok_embeddings(torch.cat([cond, sep], dim=1))  # (B, n + 1, D), shared table

    def _decode(self, h: torch.Tensor, start: int, caches: list[KVCache] | None) -> torch.Tensor:
        """Input embeddings (B, S, D) at sequence positions start..start+S-1 -> logits (B, S, V).

        Token dropout is applied before the abs-PE is added, as in larp_ar.py."""
        end = start + h.shape[1]
        if end > self.config.seq_len:
            raise ValueError(f"ARGenerator: expected at most {self.config.seq_len} positions but found {end}")
        h = self.tok_dropout(h) + self.abs_pe[:, start:end]
        for i, layer in enumerate(self.layers):
            h = layer(h, None if caches is None else caches[i])
        return self.output(self.norm(h))

    def _check_tokens(self, tokens: torch.Tensor, max_len: int, what: str) -> None:
        if tokens.ndim != 2 or tokens.shape[1] > max_len or tokens.dtype != torch.long:
            raise ValueError(
                f"{what}: expected (B, <= {max_len}) int64 tokens but found {tuple(tokens.shape)} {tokens.dtype}"
            )

    # -------------------------------------------------------------------------------- full recompute

    def prefix_logits(self, cond: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, P+1, V) predicting z_0..z_P from the condition and the prefix z_0..z_{P-1} (B, P)."""
        self._check_tokens(prefix, self.config.num_tokens - 1, "prefix_logits")
        h = torch.cat([self._embed_condition(cond), self.tok_embeddings(prefix)], dim=1)  # (B, cond_len + P, D)
        return self._decode(h, 0, None)[:, self.config.cond_len - 1 :]

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, n, V) for the target tokens (B, n) given cond (labels (B,) or tokens (B, n))."""
        n = self.config.num_tokens
        if tokens.ndim != 2 or tokens.shape[1] != n:
            raise ValueError(f"ARGenerator.forward: expected tokens (B, {n}) but found {tuple(tokens.shape)}")
        return self.prefix_logits(cond, tokens[:, :-1])

    def loss(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over the n target tokens (larp_ar.py forward with targets)."""
        logits = self(tokens, cond)  # (B, n, V)
        return F.cross_entropy(rearrange(logits, "b n v -> (b n) v").float(), rearrange(tokens, "b n -> (b n)"))

    # -------------------------------------------------------------------------------- KV-cached decoding

    def setup_cache(self, batch: int, *, dtype: torch.dtype | None = None, device: torch.device | None = None) -> None:
        """Preallocate one static KV cache per layer for `batch` sequences of seq_len positions (rounded up to
        a multiple of 8, as in larp_ar.py setup_caches). dtype/device default to the model's parameters."""
        cfg, param = self.config, self.abs_pe
        max_len = math.ceil(cfg.seq_len / 8) * 8
        self._caches = [
            KVCache(batch, cfg.heads, max_len, cfg.head_dim, dtype or param.dtype, device or param.device)
            for _ in range(cfg.depth)
        ]

    def reset_cache(self) -> None:
        """Free the KV caches."""
        self._caches = None

    def _cached_decode(self, h: torch.Tensor) -> torch.Tensor:
        if self._caches is None:
            raise RuntimeError("ARGenerator: expected a KV cache but found none; call setup_cache(batch) first")
        return self._decode(h, self._caches[0].length, self._caches)[:, -1]  # (B, V)

    def prefill(self, cond: torch.Tensor) -> torch.Tensor:
        """Run the condition through an empty cache; return the logits (B, V) that predict z_0."""
        if self._caches is not None and self._caches[0].length != 0:
            raise RuntimeError("ARGenerator.prefill: expected an empty KV cache; call setup_cache(batch) again")
        return self._cached_decode(self._embed_condition(cond))

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append the last sampled tokens (B,) to the cache; return the logits (B, V) for the next token."""
        if tokens.ndim != 1:
            raise ValueError(f"ARGenerator.step: expected tokens (B,) but found {tuple(tokens.shape)}")
        return self._cached_decode(rearrange(self.tok_embeddings(tokens), "b d -> b 1 d"))
