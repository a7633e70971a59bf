"""Configuration of the AR generator (sequence layouts: larp.generator.model).

A plain dataclass, importable without torch: the parameter validation (larp.config, run at every Snakemake parse)
builds every generator variant's configuration with it. larp.generator.model re-exports it. :class:`GeneratorTraining`
is the typed view of the training keys of the ``generator`` params section that larp.generator.train reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from larp.dictconfig import DictIO, SectionView

MODES = ("class", "fp")


@dataclass
class GeneratorConfig(DictIO):
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



@dataclass(frozen=True)
class GeneratorTraining(SectionView):
    """How a generator trains: the training keys of the resolved ``generator`` params section (larp.generator.train).

    Built once with :meth:`from_section`; the keys it does not own are listed in :data:`GENERATOR_OTHER_KEYS`.
    """

    SECTION = "generator"

    # length and batch: optimisation steps; global batch of token sequences, split over the torchrun processes
    steps: int
    batch_size: int
    # AdamW (facts §5): base lr, betas, weight decay on Linear weights only (presets.param_groups)
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    # schedule: linear warm-up from min_lr_mult x lr over warmup_steps, then cosine decay to min_lr_mult x lr
    warmup_steps: int
    min_lr_mult: float
    # bf16 autocast on CPU: True, False or "auto" (only where the CPU has bf16 matrix units; larp.runtime)
    cpu_bf16: bool | str
    # steps between resumable checkpoints and between logged training metrics
    checkpoint_every: int
    log_every: int


# Keys of the ``generator`` section that GeneratorTraining does not own, and who reads them instead.
GENERATOR_OTHER_KEYS: dict[str, str] = {
    "seed": "the stage's seed (larp.runtime.stage_seed)",
    "preset": "the model: build_config -> GeneratorConfig",
    "model": "the model: build_config -> GeneratorConfig",
    "mode": "the model and the token files read: build_config, load_tokens",
    "tokenizer": "the workflow: whose token files are trained on",
    "dataset": "the workflow: which dataset's token files are trained on",
    "eval_clips": "the stage's validation after training (run_train_generator)",
    "sampling": "sample_videos only (not part of training)",
}
