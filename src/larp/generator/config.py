"""Configuration of the AR generator (sequence layouts: larp.generator.model).

A plain dataclass, importable without torch: the parameter validation (larp.config, run at every Snakemake parse)
builds every generator variant's configuration with it. larp.generator.model re-exports it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

MODES = ("class", "fp")


@dataclass
class GeneratorConfig:
    """Generator hyper-parameters; defaults are the released `llama-abs-LP` model (facts §5)."""

    mode: str = "class"  # "class" (one class-token prefix, UCF-101) | "fp" (frame prediction, K600); paper Sec. 4.1
    vocab_size: int = 8192  # tokenizer codebook size (cfgs/larp_tokenizer.yaml)
    num_tokens: int = 1024  # tokens per video n (bottleneck_token_num)
    num_classes: int = 101  # class mode; the null class id (CFG / class dropout) is num_classes (LabelEmbedder)
    width: int = 1280  # llama-abs-LP
    depth: int = 30
    heads: int = 20
    ffn_multiple_of: int = 256  # SwiGLU hidden = 4*width*2/3 rounded UP to a multiple of this (LlamaGen)
    norm_eps: float = 1e-5  # RMSNorm eps (ModelArgs.norm_eps)
    class_dropout: float = 0.1  # label -> null class with this probability in training (class_dropout_prob)
    token_dropout: float = 0.1  # element-wise dropout on the input embeddings (token_dropout_p; paper App. A.2)
    resid_dropout: float = 0.1  # after the attention output projection (resid_dropout_p; paper App. A.2)
    ffn_dropout: float = 0.1  # after the SwiGLU down projection (ffn_dropout_p; paper App. A.2)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"GeneratorConfig.mode: expected one of {MODES} but found {self.mode!r}")
        if self.width % self.heads != 0:
            raise ValueError(
                f"GeneratorConfig: expected width divisible by heads but found width={self.width}, heads={self.heads}"
            )
        for name in ("vocab_size", "num_tokens", "num_classes", "width", "depth", "heads", "ffn_multiple_of"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name}: expected a positive integer but found {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def ffn_hidden(self) -> int:
        """SwiGLU hidden size: int(2 * 4d / 3) rounded up to `ffn_multiple_of` (larp_ar.py FeedForward)."""
        hidden = int(2 * 4 * self.width / 3)
        return math.ceil(hidden / self.ffn_multiple_of) * self.ffn_multiple_of

    @property
    def cond_len(self) -> int:
        """Number of condition positions: 1 class token, or n condition tokens + [sep]."""
        return 1 if self.mode == "class" else self.num_tokens + 1

    @property
    def seq_len(self) -> int:
        """Full training sequence length = abs-PE length: cond_len + n - 1 (n in class mode, 2n in fp mode)."""
        return self.cond_len + self.num_tokens - 1

    @property
    def token_table_size(self) -> int:
        """Rows of the token embedding table: V, plus the [sep] row (id V) in fp mode."""
        return self.vocab_size + (1 if self.mode == "fp" else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GeneratorConfig.from_dict: unknown keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)
