"""Train the AR generator on precomputed LARP tokens (class-conditional or frame prediction).

Paper §4.1 and App. A.2; official trainer facts in docs/official-code-facts.md §5 ("Optimizer and schedule"):
AdamW (lr 6e-4, betas 0.9/0.95, weight decay 0.05 on Linear weights only), step-wise linear warm-up then cosine
decay to ``min_lr_mult`` x lr, bf16 autocast on GPU (no GradScaler), no EMA, no gradient clipping. The loss is the
mean next-token cross-entropy over the n target tokens (:meth:`ARGenerator.loss`).

Training data are the token files of ``encode_tokens`` (deterministic SVQ, paper App. A.2): class mode reads
(tokens, labels), frame-prediction mode (tokens, fp_cond). The official trainer tokenizes on the fly; here the
flipped copies were encoded once (facts §5 "AR data pipeline").

Batches are a pure function of (seed, step, rank) — an epoch-wise shuffle, as the official DistributedSampler, whose
global batch is split over the ranks — and the torch RNG state is checkpointed, so on CPU a resumed run ends with
exactly the weights of an uninterrupted one and a torchrun run sees the same global batches as a single process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..io import read_json
from ..npzmap import chunked, load_npz
from ..runtime import Dist, autocast_for, progress
from ..training import Checkpointer, RunningMeans, Throughput, all_mean, check_finite, log_line, lr_multiplier
from .config import GeneratorTraining
from .model import ARGenerator, GeneratorConfig
from .presets import get_preset, param_groups

# the subsection of `generator` that only sample_videos reads (changing it does not retrain)
SAMPLING_KEY = "sampling"


# ---------------------------------------------------------------------------------------------------------------
# configuration and data

def training_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """The generator section without its ``sampling`` subsection: what determines the trained weights."""
    return {k: v for k, v in section.items() if k != SAMPLING_KEY}


def build_config(section: Mapping[str, Any], token_meta: Mapping[str, Any]) -> GeneratorConfig:
    """Preset + ``model`` overrides + mode, with vocabulary, sequence length and classes from the token files."""
    return get_preset(section["preset"], **dict(section["model"]), mode=section["mode"],
                      vocab_size=int(token_meta["codebook_size"]), num_tokens=int(token_meta["num_tokens"]),
                      num_classes=int(token_meta["num_classes"]))


@dataclass
class TokenData:
    """One split of a token folder: targets (N, n) and conditions (labels (N,) or condition tokens (N, n))."""

    tokens: np.ndarray
    cond: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.tokens)


def load_tokens(folder: str | Path, split: str, mode: str) -> TokenData:
    """Map ``<folder>/{split}.npz`` and read ``<folder>/meta.json`` (written by encode_tokens) for ``mode``.

    The token arrays are read-only memory maps (larp.npzmap), not copies: at paper scale the K600 train split is
    ~52 GB of ids + conditions, which every DDP process would otherwise hold privately. Batches copy their rows."""
    folder = Path(folder)
    path = folder / f"{split}.npz"
    if not path.is_file() or not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no token files at {folder} (expected {split}.npz and meta.json); run the "
                                "encode_tokens stage for this tokenizer first")
    meta = read_json(folder / "meta.json")
    key = "labels" if mode == "class" else "fp_cond"
    arrays = load_npz(path, ("tokens", key))
    tokens, cond = arrays["tokens"], arrays[key]
    n, vocab, classes = int(meta["num_tokens"]), int(meta["codebook_size"]), int(meta["num_classes"])
    if tokens.ndim != 2 or tokens.shape[1] != n or len(tokens) == 0:
        raise ValueError(f"{path}: expected tokens (N > 0, {n}) but found {tokens.shape}")
    top = max(chunked(tokens, lambda a: int(a.max())))  # scanned in chunks: the pages are not kept resident
    if top >= vocab or (mode == "fp" and max(chunked(cond, lambda a: int(a.max()))) >= vocab):
        raise ValueError(f"{path}: expected token ids < codebook_size {vocab} but found {top}")
    if mode == "class" and (int(cond.min()) < 0 or int(cond.max()) >= classes):
        raise ValueError(f"{path}: expected labels in [0, {classes}) but found [{int(cond.min())}, {int(cond.max())}]")
    return TokenData(tokens=tokens, cond=cond, meta=meta)


class TokenBatches:
    """``batch(step)`` = this rank's share of the global batch of ``step``: examples at global positions
    step*G + rank*B + [0, B) of an endless sequence of per-epoch permutations (G = B * world)."""

    def __init__(self, data: TokenData, batch: int, world: int, seed: int, rank: int):
        self.data, self.batch, self.world, self.seed, self.rank = data, batch, world, seed, rank
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 1:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        return self._perms[epoch]

    def indices(self, step: int) -> np.ndarray:
        n = len(self.data)
        pos = step * self.batch * self.world + self.rank * self.batch + np.arange(self.batch)
        return np.array([self._perm(int(p // n))[p % n] for p in pos])

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, n) int64, cond (B,) or (B, n) int64) for ``step``."""
        idx = self.indices(step)
        return (torch.from_numpy(self.data.tokens[idx].astype(np.int64)),
                torch.from_numpy(self.data.cond[idx].astype(np.int64)))


def build_optimizer(model: nn.Module, training: GeneratorTraining) -> torch.optim.AdamW:
    """AdamW with weight decay on Linear weights only (presets.param_groups; facts §5)."""
    return torch.optim.AdamW(param_groups(model, training.weight_decay), lr=training.lr, betas=training.betas)


# ---------------------------------------------------------------------------------------------------------------
# training

@dataclass
class TrainResult:
    model: ARGenerator
    config: GeneratorConfig
    training: GeneratorTraining
    metrics: dict[str, float]
    steps: int


def _token_accuracy(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == tokens).float().mean()


def train_generator(section: Mapping[str, Any], data: TokenData, *, work_dir: str | Path, seed: int, device: str,
                    dist: Dist = Dist(), log: Callable[[dict[str, float], int], None] | None = None,
                    stop_after: int | None = None) -> TrainResult:
    """Train the resolved generator ``section`` for its ``steps`` (resuming from ``work_dir``); return the model, its
    training settings and the last window's means.

    The section is read once, at the top: its training keys become :class:`GeneratorTraining` (what the loop reads),
    its model keys the model configuration, and the section without ``sampling`` identifies the checkpoint a run
    resumes from. ``stop_after`` ends the process's work early at that step after checkpointing (used to test
    resumption).
    """
    training = GeneratorTraining.from_section(section)
    cfg = build_config(section, data.meta)
    steps, world = training.steps, dist.world
    if training.batch_size % world:
        raise ValueError(f"generator.batch_size {training.batch_size} is not divisible by the {world} processes")
    batch = training.batch_size // world

    torch.manual_seed(seed)  # identical initial weights on every rank
    model = ARGenerator(cfg).to(device)
    torch.manual_seed(seed + 1 + dist.rank)  # per-rank stream for dropout and class dropout
    opt = build_optimizer(model, training)
    net: nn.Module = model
    if world > 1:
        ddp_kw = {"device_ids": [dist.local_rank]} if device == "cuda" else {}
        net = nn.parallel.DistributedDataParallel(model, **ddp_kw)

    ckpt = Checkpointer(work_dir, {"generator": training_section(section), "data": _data_identity(data),
                                   "seed": seed, "world": world})
    window = RunningMeans()  # checkpointed: a resumed run reports the window means an uninterrupted one does
    objects = {"model": model, "opt": opt, "window": window}
    start = ckpt.resume(objects, "train_generator", dist.is_main)

    batches = TokenBatches(data, batch, world, seed, dist.rank)
    amp = autocast_for(device, training.cpu_bf16)  # bf16 on GPU; on CPU per cpu_bf16; the loss stays fp32
    meter = Throughput()
    model.train()
    bar = progress(total=steps, initial=start, desc="train_generator", disable=None if dist.is_main else True)
    done = start
    for step in range(start, steps):
        tokens, cond = (t.to(device, non_blocking=True) for t in batches.batch_at(step))
        mult = lr_multiplier(step, steps, training.warmup_steps, training.min_lr_mult)
        for g in opt.param_groups:
            g["lr"] = training.lr * mult
        with amp:
            logits = net(tokens, cond)  # (B, n, V)
        loss = F.cross_entropy(rearrange(logits, "b n v -> (b n) v").float(), rearrange(tokens, "b n -> (b n)"))
        check_finite({"loss": loss.detach()}, step, ckpt.path)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

        meter.add(tokens.numel() * world)
        window.add({"loss": loss.item(), "acc": _token_accuracy(logits.detach(), tokens).item()})
        bar.update(1)
        done = step + 1
        if done % training.log_every == 0 or done == steps:
            logged = all_mean(window.mean(), dist, device) | {"lr": training.lr * mult, "tokens_per_s": meter.rate()}
            bar.set_postfix(loss=f"{logged['loss']:.4f}", acc=f"{logged['acc']:.3f}")
            if log is not None and dist.is_main:
                log(logged, done)
            if bar.disable and dist.is_main:
                log_line("train_generator", done, steps, logged, ("loss", "acc", "lr", "tokens_per_s"))
        if ckpt.end_of_step(done, steps, training.checkpoint_every, objects, dist.is_main, stop_after):
            break
    bar.close()
    final = all_mean(window.last, dist, device)
    return TrainResult(model=model, config=cfg, training=training, metrics={f"train_{k}": v for k, v in final.items()},
                       steps=done)


def _data_identity(data: TokenData) -> dict[str, Any]:
    """What a checkpoint must agree on about its data (a resume on other token files starts over)."""
    return {"shape": list(data.tokens.shape), "sum": sum(chunked(data.tokens, lambda a: int(a.sum(dtype=np.int64)))),
            "cond_sum": sum(chunked(data.cond, lambda a: int(a.sum(dtype=np.int64)))), "meta": data.meta}


@torch.no_grad()
def evaluate_nll(model: ARGenerator, data: TokenData, *, device: str, limit: int, batch: int) -> dict[str, float]:
    """Mean next-token NLL and top-1 accuracy (eval mode, no class dropout) on the first ``limit`` examples."""
    was_training = model.training
    model.eval()
    n = min(limit, len(data))
    amp = autocast_for(device, cpu_bf16=False)  # bf16 on GPU; fp32 on CPU
    nll, acc = 0.0, 0.0
    for i in range(0, n, batch):
        tokens = torch.from_numpy(data.tokens[i:min(i + batch, n)].astype(np.int64)).to(device)
        cond = torch.from_numpy(data.cond[i:min(i + batch, n)].astype(np.int64)).to(device)
        with amp:
            logits = model(tokens, cond).float()  # (b, n, V)
        nll += F.cross_entropy(rearrange(logits, "b n v -> (b n) v"), rearrange(tokens, "b n -> (b n)"),
                               reduction="sum").item()
        acc += (logits.argmax(-1) == tokens).float().sum().item()
    model.train(was_training)
    denom = n * data.tokens.shape[1]
    return {"val_loss": nll / denom, "val_acc": acc / denom, "val_examples": n}


__all__ = ["build_config", "build_optimizer", "evaluate_nll", "load_tokens", "train_generator",
           "training_section", "TokenBatches", "TokenData", "TrainResult"]
