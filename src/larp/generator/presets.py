"""Generator presets, parameter counting and the AdamW parameter-group split.

Sizes follow the official `llama-abs-*` registry (hywang66/LARP `models/larp_ar.py`; docs/official-code-facts.md
§5, §8.5, §9).
Parameter counts with vocab 8192, 1024 tokens, 101 classes (counted on the meta device, see `main`):

- "gen-LP"  d 1280, 30 layers, 20 heads, FFN 3584: 631,975,680 (631.98M; the paper's "632M", Table 1 last row);
            633,157,120 (633.16M) in frame-prediction mode (8193-row token table, 2n-long PE, no class table).
- "gen-L"   d 1024, 24 layers, 16 heads, FFN 2816: 326,261,760 (326.26M). The paper's "343M" (Table 1) is
            LlamaGen's GPT-L count for a 16,384 vocabulary: the same config with vocab_size=16384 gives
            343,038,976 (343.04M). The label was inherited; with LARP's 8192 codebook the model is 326.26M
            (facts §8.5).
- "gen-B"   d 768, 12 layers, 12 heads, FFN 2048: 98,401,536 (98.4M; the code comment's "111M" is again LlamaGen's).
- "embedded" small CPU preset (d 256, 6 layers, 8 heads) with vocab 1024 / 128 tokens, the sequence
            bench_generator.py times; the pipeline always sets vocab_size, num_tokens and num_classes from the token
            files (train.build_config) and params.yaml narrows width/depth for the embedded run.
- "tiny"    d 32, 2 layers, 2 heads, for tests.

Importable without torch (the parameter validation, run at every Snakemake parse, resolves presets with
:func:`get_preset`): torch and the model are imported only by the functions that build or split a model.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from larp.generator.config import GeneratorConfig

if TYPE_CHECKING:
    import torch.nn as nn


def get_preset(name: str, **overrides) -> GeneratorConfig:
    """The named preset with fields replaced by `overrides` (e.g. vocab_size / num_tokens from the tokenizer)."""
    if name not in GENERATOR_PRESETS:
        raise KeyError(f"unknown generator preset {name!r}; expected one of {sorted(GENERATOR_PRESETS)}")
    return dataclasses.replace(GENERATOR_PRESETS[name], **overrides)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once; works on meta-device models)."""
    return sum(p.numel() for p in model.parameters())


def preset_num_params(name: str, **overrides) -> int:
    """Parameter count of a preset, built on torch.device("meta") (no memory, no init cost)."""
    import torch

    from larp.generator.model import ARGenerator

    with torch.device("meta"):
        return count_parameters(ARGenerator(get_preset(name, **overrides)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on nn.Linear weights only; biases, norms, embeddings (token and class tables)
    and the abs-PE get none (minGPT-style split used by the LARP AR trainer, facts §5)."""
    import torch.nn as nn

    decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decay_ids], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in decay_ids], "weight_decay": 0.0},
    ]


def main() -> int:
    """Print every preset's size and parameter count: `python -m larp.generator.presets`."""
    for name, cfg in GENERATOR_PRESETS.items():
        print(
            f"{name:>9}: width {cfg.width:4d} depth {cfg.depth:2d} heads {cfg.heads:2d} ffn {cfg.ffn_hidden:4d} "
            f"vocab {cfg.vocab_size:5d} tokens {cfg.num_tokens:4d}  class {preset_num_params(name):>12,d}  "
            f"fp {preset_num_params(name, mode='fp'):>12,d}"
        )
    return 0


GENERATOR_PRESETS: dict[str, GeneratorConfig] = {
    "gen-LP": GeneratorConfig(width=1280, depth=30, heads=20),  # llama-abs-LP, the released "632M" model
    "gen-L": GeneratorConfig(width=1024, depth=24, heads=16),  # llama-abs-L, 326.26M (paper label "343M")
    "gen-B": GeneratorConfig(width=768, depth=12, heads=12),  # llama-abs-B, 98.4M
    "embedded": GeneratorConfig(width=256, depth=6, heads=8, vocab_size=1024, num_tokens=128),  # CPU default run
    "tiny": GeneratorConfig(width=32, depth=2, heads=2, vocab_size=64, num_tokens=16),  # tests
}


if __name__ == "__main__":
    raise SystemExit(main())
