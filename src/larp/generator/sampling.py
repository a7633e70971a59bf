"""Token sampling for the AR generator: KV-cached decoding with classifier-free guidance.

References (facts only; no code copied):
- LARP paper App. A.2: CFG scale 1.25, no top-k / top-p.
- Official code hywang66/LARP `ar/generate.py` (LlamaGen / gpt-fast derived; docs/official-code-facts.md §5
  "Sampling"): static KV cache, prefill the condition, then one token at a time; CFG doubles the batch as
  [cond labels, null labels], logits = uncond + s * (cond - uncond) on the raw logits before temperature, at
  every step; class-conditional only (frame prediction asserts no CFG); multinomial sampling; bf16 on GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from larp.data.clips import ClipStore, to_float_video
from larp.generator.model import ARGenerator
from larp.generator.video_io import to_uint8
from larp.runtime import progress


def cfg_combine(cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): uncond + scale * (cond - uncond)."""
    return uncond_logits + scale * (cond_logits - uncond_logits)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits (B, V) outside the top-k and outside the top-p nucleus to -inf; top_k=0 / top_p=1 mean off.

    The nucleus is the smallest set of most likely tokens whose probability mass reaches top_p (Holtzman et al.
    2020); the most likely token is always kept."""
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the strictly more likely tokens
        remove_sorted = mass_before >= top_p
        remove = remove_sorted.scatter(-1, order, remove_sorted)  # back to vocabulary order
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def sample_from_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row from softmax(filter(logits / temperature)); logits (B, V) -> tokens (B,) int64."""
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def next_token_logits_full(model: ARGenerator, cond: torch.Tensor, prefix_tokens: torch.Tensor) -> torch.Tensor:
    """Logits (B, V) for token z_P by recomputing the whole sequence [cond, z_0..z_{P-1}] without a cache.

    `prefix_tokens` (B, P) may be empty (P = 0). Used as the no-cache reference by tests and the benchmark."""
    return model.prefix_logits(cond, prefix_tokens)[:, -1]


def _check_args(
    model: ARGenerator, cond: torch.Tensor, cfg_scale: float, temperature: float, top_k: int, top_p: float
) -> None:
    if cfg_scale != 1.0 and model.config.mode != "class":
        raise ValueError(
            f"generate: CFG is class-conditional only (LARP ar/generate.py), but cfg_scale={cfg_scale} was given for "
            f"mode={model.config.mode!r}; pass cfg_scale=1.0 for frame prediction"
        )
    if temperature <= 0:
        raise ValueError(f"generate: expected temperature > 0 but found {temperature}")
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: expected top_k >= 0 and 0 < top_p <= 1 but found top_k={top_k}, top_p={top_p}")
    if cond.ndim == 0 or cond.shape[0] == 0:
        raise ValueError(f"generate: expected a non-empty batch of conditions but found shape {tuple(cond.shape)}")


@torch.inference_mode()
def generate(
    model: ARGenerator,
    cond: torch.Tensor,
    *,
    cfg_scale: float = 1.25,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Sample n tokens per condition; cond = labels (B,) in class mode, condition tokens (B, n) in fp mode.

    Runs in eval mode (no dropout; the model's mode is restored afterwards). With cfg_scale != 1 (class mode
    only) the batch is doubled as [cond, null] and the raw logits are combined by `cfg_combine` at every step
    before temperature / top-k / top-p. `generator` (on cond's device) makes samples reproducible. On CUDA the
    model runs under bf16 autocast with a bf16 cache; on CPU in the model's dtype. use_cache=False recomputes
    the whole sequence for every token (same distribution, much slower). Returns tokens (B, n) int64.
    """
    _check_args(model, cond, cfg_scale, temperature, top_k, top_p)
    cfg = model.config
    batch, use_cfg = cond.shape[0], cfg_scale != 1.0
    model_cond = torch.cat([cond, torch.full_like(cond, cfg.num_classes)]) if use_cfg else cond  # [cond, null]
    on_cuda = cond.device.type == "cuda"
    tokens = torch.empty(batch, cfg.num_tokens, dtype=torch.long, device=cond.device)  # (B, n)

    was_training = model.training
    model.eval()
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
            if use_cache:
                model.setup_cache(model_cond.shape[0], dtype=torch.bfloat16 if on_cuda else None, device=cond.device)
            for i in range(cfg.num_tokens):
                if not use_cache:
                    prefix = tokens[:, :i].repeat(2, 1) if use_cfg else tokens[:, :i]  # (B or 2B, i)
                    logits = next_token_logits_full(model, model_cond, prefix)
                elif i == 0:
                    logits = model.prefill(model_cond)
                else:
                    last = tokens[:, i - 1]
                    logits = model.step(last.repeat(2) if use_cfg else last)
                logits = logits.float()  # (B or 2B, V)
                if use_cfg:
                    cond_logits, uncond_logits = logits.chunk(2)
                    logits = cfg_combine(cond_logits, uncond_logits, cfg_scale)
                tokens[:, i] = sample_from_logits(
                    logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
                )
    finally:
        model.reset_cache()
        model.train(was_training)
    return tokens


# ---------------------------------------------------------------------------------------------------------------
# videos: sample token sequences for real windows and decode them through the tokenizer

def _sample_nll(model, tokens: torch.Tensor, cond: torch.Tensor) -> float:
    """Summed NLL of sampled sequences under the model without CFG (the official sample.py reports it, facts §5)."""
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=tokens.device.type == "cuda"):
        logits = model(tokens, cond).float()  # (B, n, V)
    return F.cross_entropy(rearrange(logits, "b n v -> (b n) v"), rearrange(tokens, "b n -> (b n)"),
                           reduction="sum").item()


@torch.inference_mode()
def sample_videos(model, tokenizer, store: ClipStore, windows: list[tuple[int, int]], videos: np.ndarray, *,
                  mode: str, sampling: Mapping[str, Any], context: int, device: str) -> dict[str, np.ndarray | float]:
    """Generate one video per real window (class: its label; fp: its padded first ``context`` frames), decode it
    and write it into ``videos`` (uint8 (N, T, H, W, 3), e.g. a memory map: paper-scale sets exceed memory).

    Seeded by ``sampling['seed']``: the same seed, windows and batch size give the same samples. Returns labels,
    real_index (video, start), the generated tokens, the condition tokens (fp) and the mean sample NLL.
    """
    from larp.tokenizer.encode import pad_context, token_dtype

    torch.manual_seed(sampling["seed"])  # stochastic condition encoding, if chosen
    gen = torch.Generator(device).manual_seed(sampling["seed"])
    frames, bs = tokenizer.cfg.frames, sampling["batch_size"]
    cfg_scale = sampling["cfg_scale"] if mode == "class" else 1.0
    labels = np.array([store.label(v) for v, _ in windows], dtype=np.int64)
    tokens, conds, nll = [], [], 0.0
    for i in progress(range(0, len(windows), bs), desc="sample_videos"):
        part = windows[i:i + bs]
        if mode == "class":
            cond = torch.from_numpy(labels[i:i + len(part)]).to(device)
        else:
            real = to_float_video(store.read_many(part, frames)).to(device)
            cond = tokenizer.encode(pad_context(real, context),
                                    deterministic=not sampling["stochastic_condition"]).indices.long()
            conds.append(cond.cpu())
        out = generate(model, cond, cfg_scale=cfg_scale, temperature=sampling["temperature"],
                       top_k=sampling["top_k"], top_p=sampling["top_p"], generator=gen)  # (b, n)
        nll += _sample_nll(model, out, cond)
        tokens.append(out.cpu())
        videos[i:i + len(part)] = to_uint8(tokenizer.decode_indices(out))
    all_tokens = torch.cat(tokens)
    dtype = token_dtype(tokenizer.cfg.codebook_size)  # as the token files (encode_tokens)
    result = {"labels": labels, "real_index": np.asarray(windows, np.int64),
              "tokens": all_tokens.numpy().astype(dtype), "sample_nll": nll / all_tokens.numel()}
    if conds:
        result["cond_tokens"] = torch.cat(conds).numpy().astype(dtype)
    return result
