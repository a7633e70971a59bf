"""Train a LARP tokenizer (or the patchwise baseline) with its AR prior, GAN and SVQ losses.

Paper §3.2-3.3 and App. A.1; official trainer facts in docs/official-code-facts.md §4 and §8. Per step:

    L = l1·L1 + lpips·LPIPS + quant·L_SVQ + gan·L_G + α·L_prior          (paper Eq. 8, facts §4 "Generator objective")

with one discriminator update (non-saturating loss with smoothed labels + LeCam, weight applied once) every
``disc_every`` steps at ``disc_lr_mult`` × lr, done before the tokenizer update on detached reconstructions.
The prior's learning-rate multiplier is applied *under* the schedule (lr_prior = mult · lr · sched), unlike the
official trainer where the schedule overwrites it (facts §8.1); ``prior_lr_mult_scheduled: false`` reproduces that.

Batches are a pure function of (seed, step, rank), and the torch RNG state is checkpointed, so on CPU a resumed run
ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.clips import ClipStore, to_float_video
from ..runtime import Dist, autocast_for, progress
from ..metrics.recon import psnr_per_clip, ssim_per_frame
from ..training import Checkpointer, RunningMeans, Throughput, all_mean, check_finite, log_line, lr_multiplier
from .config import TokenizerTraining
from .losses import (Discriminator, DiscriminatorConfig, LeCam, PerceptualLoss, d_loss_ns_smooth, g_loss_ns)
from .model import LARPTokenizer, TokenizerConfig
from .presets import build_config, count_parameters  # build_config: torch-free there (params validation)
from .prior import ss_rate
from .quantizer import codebook_usage


# ---------------------------------------------------------------------------------------------------------------
# data: a batch is a pure function of (seed, step, rank)

class WindowBatches(torch.utils.data.Dataset):
    """Item ``step`` = this rank's slice of the global uint8 batch (B,T,H,W,3) of that step.

    The global batch is a pure function of (seed, step): uniform over the videos of all stores (their lists are
    simply concatenated, as the official multi-CSV loader does, facts §4), uniform start (facts §7 "native" clip
    sampling) and a random horizontal flip per clip. So resumed runs see the same data, and N processes together
    see exactly the batch one process would.
    """

    def __init__(self, stores: Sequence[ClipStore], global_batch: int, frames: int, seed: int, rank: int = 0,
                 world: int = 1, flip: bool = True):
        self.stores, self.frames, self.seed, self.flip = stores, frames, seed, flip
        self.global_batch, self.per_rank, self.rank = global_batch, global_batch // world, rank
        self.offsets = np.cumsum([0] + [len(s) for s in stores])
        if self.offsets[-1] == 0:
            raise ValueError("the training clip stores hold no videos")

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, int(step)])
        vids = rng.integers(0, int(self.offsets[-1]), size=self.global_batch)
        starts = rng.random(self.global_batch)
        flips = rng.random(self.global_batch) < 0.5
        out = []
        for k in range(self.rank * self.per_rank, (self.rank + 1) * self.per_rank):
            s = int(np.searchsorted(self.offsets, vids[k], side="right")) - 1
            store, i = self.stores[s], int(vids[k] - self.offsets[s])
            n = store.num_frames(i)
            if n < self.frames:
                raise ValueError(f"video {i} of {store} has {n} frames, fewer than the clip length {self.frames}")
            clip = store.read(i, int(starts[k] * (n - self.frames + 1)), self.frames)
            if self.flip and flips[k]:
                clip = clip[:, :, ::-1]
            out.append(np.ascontiguousarray(clip))
        return torch.from_numpy(np.stack(out))


# ---------------------------------------------------------------------------------------------------------------
# the generator-side module wrapped by DDP

class TokenizerStep(nn.Module):
    """Tokenizer forward + SVQ + prior loss in one forward, so DistributedDataParallel sees one module."""

    def __init__(self, tokenizer: LARPTokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, video: torch.Tensor, deterministic: bool, ss: float, rounds: int, with_prior: bool = True):
        out = self.tokenizer(video, deterministic=deterministic)
        use = self.tokenizer.prior is not None and with_prior
        prior = self.tokenizer.prior_loss(out.quant, ss_rate=ss, n_rounds=rounds) if use else None
        return out, prior


@dataclass
class TrainResult:
    model: LARPTokenizer
    config: TokenizerConfig
    training: TokenizerTraining
    metrics: dict[str, float]
    steps: int


def prior_ramp(step: int, steps: int, training: TokenizerTraining) -> float:
    """Multiplier of the prior loss at ``step``: 0 before ``prior_start_frac`` of training, then linear to 1 over
    ``prior_ramp_frac`` (both 0: always 1, the paper). At small scale the prior, whose loss is easiest to lower by
    making every token the same code, collapses the codebook before the reconstruction has formed; starting it
    later lets the codes carry content first (README "Embedded default")."""
    f = step / max(1, steps)
    start, ramp = training.prior_start_frac, training.prior_ramp_frac
    if f < start:
        return 0.0
    return 1.0 if ramp <= 0 else min(1.0, (f - start) / ramp)


def _param_groups(model: LARPTokenizer) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    prior, rest = [], []
    for name, p in model.named_parameters():
        (prior if name.startswith("prior.") else rest).append(p)
    return rest, prior


# ---------------------------------------------------------------------------------------------------------------

def train_tokenizer(section: Mapping[str, Any], clips: Mapping[str, Any], train_stores: Sequence[ClipStore], *,
                    work_dir: str | Path, seed: int, device: str, dist: Dist = Dist(),
                    log: Callable[[dict[str, float], int], None] | None = None,
                    stop_after: int | None = None) -> TrainResult:
    """Train the resolved tokenizer ``section`` for its ``steps`` (resuming from ``work_dir``); return the model, its
    training settings and the final metrics.

    The section is read once, at the top: its training keys become :class:`TokenizerTraining` (what the loop reads),
    its model keys the model configuration, and the whole section identifies the checkpoint a run resumes from.
    ``stop_after`` ends the process's work early at that step after checkpointing (used to test resumption).
    """
    training = TokenizerTraining.from_section(section)
    cfg = build_config(section, clips)
    steps, world = training.steps, dist.world
    if training.batch_size % world:
        raise ValueError(f"tokenizer.batch_size {training.batch_size} is not divisible by the {world} processes")
    loss_w = training.loss

    torch.manual_seed(seed)  # identical initial weights on every rank
    model = LARPTokenizer(cfg).to(device)
    use_gan = loss_w.gan_weight > 0
    disc = lecam = None
    if use_gan:
        disc = Discriminator(DiscriminatorConfig(frames=cfg.frames, resolution=cfg.resolution, patch_t=cfg.patch_t,
                                                 patch_s=cfg.patch_s, **asdict(training.discriminator))).to(device)
        lecam = LeCam().to(device)
    perceptual = PerceptualLoss().to(device) if loss_w.lpips_weight > 0 else None
    if training.codebook_init == "kmeans":
        # identical on every rank (same clips, own generator; the global RNG is untouched) and overwritten by a
        # checkpoint on resume; see SVQ.init_from_data for why
        clips0 = WindowBatches(train_stores, training.codebook_init_clips, cfg.frames, seed + 7919, flip=False)[0]
        model.init_codebook_from_data(to_float_video(clips0).to(device), torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 1 + dist.rank)  # per-rank stream for SVQ draws, dropout, SS masks, label noise

    rest, prior_params = _param_groups(model)
    betas, lr = training.betas, training.lr
    groups = [{"params": rest, "mult": 1.0}]
    if prior_params:
        groups.append({"params": prior_params,
                       "mult": training.prior_lr_mult if training.prior_lr_mult_scheduled else 1.0})
    opt = torch.optim.Adam(groups, lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr * loss_w.disc_lr_mult, betas=betas) if disc else None

    step_module: nn.Module = TokenizerStep(model)
    disc_module: nn.Module | None = disc
    if world > 1:
        ddp_kw = {"device_ids": [dist.local_rank]} if device == "cuda" else {}
        # a delayed prior leaves its parameters unused in the first steps
        step_module = nn.parallel.DistributedDataParallel(
            step_module, find_unused_parameters=training.prior_start_frac > 0, **ddp_kw)
        if disc is not None:
            disc_module = nn.parallel.DistributedDataParallel(disc, **ddp_kw)

    ckpt = Checkpointer(work_dir, {"tokenizer": dict(section), "clips": dict(clips), "seed": seed, "world": world})
    window = RunningMeans()  # checkpointed: a resumed run reports the window means an uninterrupted one does
    objects = {"model": model, "opt": opt, "window": window}
    if disc is not None:
        objects.update(disc=disc, lecam=lecam, opt_d=opt_d)
    start = ckpt.resume(objects, "train_tokenizer", dist.is_main)

    data = WindowBatches(train_stores, training.batch_size, cfg.frames, seed, dist.rank, world, training.flip)
    # the loader gets its own generator: creating its iterator would otherwise draw from the global RNG and shift
    # the SVQ / dropout stream of a resumed run
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=range(start, steps),
                                         num_workers=training.num_workers, persistent_workers=False,
                                         generator=torch.Generator().manual_seed(seed))
    amp = autocast_for(device, training.cpu_bf16)  # SVQ distances and the losses stay fp32 (.float() below)
    meter = Throughput()
    routing = training.routing_warmup_bias if model.holistic else 0.0
    routing_steps = max(1.0, training.routing_frac * steps)
    model.train()
    bar = progress(total=steps, initial=start, desc="train_tokenizer", disable=None if dist.is_main else True)
    done = start  # steps completed (a resume at the last step trains none)
    for step, raw in enumerate(loader, start=start):
        video = to_float_video(raw).to(device, non_blocking=True)
        mult = lr_multiplier(step, steps, training.warmup_steps, training.min_lr_mult)
        for g in opt.param_groups:
            g["lr"] = lr * g["mult"] * mult
        ss = ss_rate(step, steps, training.ss_peak, training.ss_peak_frac) if training.ss_rounds == 2 else 0.0
        # routing warm-up: an extra bias decaying linearly to 0 at routing_frac of training, on top of the model's
        # own cfg.routing_bias; a pure function of the step (resumable)
        model.routing_bias = cfg.routing_bias + routing * max(0.0, 1.0 - step / routing_steps)

        with amp:
            # before prior_start_frac the prior's loss weight is 0: skip its forward (no gradient, no effect)
            ramp = prior_ramp(step, steps, training)
            out, prior = step_module(video, training.deterministic_quantization, ss, training.ss_rounds, ramp > 0)
        recon = out.recon.float()
        losses: dict[str, torch.Tensor] = {"l1": (recon - video).abs().mean(), "mse": (recon - video).square().mean(),
                                           "quant": out.quant.loss}
        gan_on = use_gan and step >= loss_w.gan_start

        if gan_on and step % loss_w.disc_every == 0:
            for g in opt_d.param_groups:
                g["lr"] = lr * loss_w.disc_lr_mult * mult
            disc.requires_grad_(True)
            with amp:
                real_logits, fake_logits = disc_module(video), disc_module(recon.detach())
            d_loss = d_loss_ns_smooth(real_logits.float(), fake_logits.float())
            reg = lecam(real_logits.float(), fake_logits.float())
            d_total = d_loss + loss_w.lecam_weight * reg
            check_finite({"d_loss": d_total}, step, ckpt.path)
            opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            opt_d.step()
            window.add({"d_loss": d_loss.item(), "lecam": reg.item()})

        total = (loss_w.l1_weight * losses["l1"] + loss_w.mse_weight * losses["mse"]
                 + loss_w.quant_weight * losses["quant"])
        if perceptual is not None:
            losses["lpips"] = perceptual(recon, video)
            total = total + loss_w.lpips_weight * losses["lpips"]
        if gan_on:
            disc.requires_grad_(False)
            with amp:
                losses["g_adv"] = g_loss_ns(disc_module(recon).float())
            total = total + loss_w.gan_weight * losses["g_adv"]
        if prior is not None:
            losses["prior"] = prior.loss
            total = total + training.prior_weight * ramp * prior.loss
        losses["total"] = total
        check_finite(losses, step, ckpt.path)

        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

        meter.add(video.shape[0] * world)
        stats = {k: v.item() for k, v in losses.items()}
        stats["psnr"] = psnr_per_clip(recon.detach(), video).mean().item()
        if prior is not None:
            stats["prior_acc"] = float(prior.acc_top1)
        window.add(stats)
        bar.update(1)
        done = step + 1
        if done % training.log_every == 0 or done == steps:
            usage, ppl = codebook_usage(out.quant.indices, cfg.codebook_size)
            logged = all_mean(window.mean(), dist, device) | {
                "lr": lr * mult, "ss_rate": ss, "codebook_usage": float(usage), "perplexity": float(ppl),
                "clips_per_s": meter.rate()}
            bar.set_postfix(loss=f"{logged['total']:.4f}", psnr=f"{logged['psnr']:.2f}",
                            clips_s=f"{logged['clips_per_s']:.1f}")
            if log is not None and dist.is_main:
                log(logged, done)
            if bar.disable and dist.is_main:
                log_line("train_tokenizer", done, steps, logged, ("total", "l1", "mse", "prior", "psnr", "codebook_usage",
                                                                  "lr", "ss_rate", "clips_per_s"))
        if ckpt.end_of_step(done, steps, training.checkpoint_every, objects, dist.is_main, stop_after):
            break
    bar.close()
    model.routing_bias = cfg.routing_bias  # the trained model: its own configured bias, no warm-up extra
    final = all_mean(window.last, dist, device)
    return TrainResult(model=model, config=cfg, training=training, metrics={f"train_{k}": v for k, v in final.items()},
                       steps=done)


# ---------------------------------------------------------------------------------------------------------------
# evaluation at the end of training

@torch.no_grad()
def evaluate_reconstruction(model: LARPTokenizer, store: ClipStore, windows: Sequence[tuple[int, int]], *,
                            device: str, batch: int = 16) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """PSNR / SSIM / codebook usage with deterministic SVQ on ``windows``; returns the first batch for figures."""
    model.eval()
    frames = model.cfg.frames
    psnrs, ssims, idx = [], [], []
    first = None
    for i in range(0, len(windows), batch):
        video = to_float_video(store.read_many(windows[i:i + batch], frames)).to(device)
        recon, indices = model.reconstruct(video)
        psnrs.append(psnr_per_clip(recon, video).cpu())
        ssims.append(ssim_per_frame(recon, video).cpu())
        idx.append(indices.cpu())
        if first is None:
            first = (video.cpu(), recon.cpu())
    usage, ppl = codebook_usage(torch.cat(idx), model.cfg.codebook_size)
    metrics = {"val_psnr": torch.cat(psnrs).mean().item(), "val_ssim": torch.cat(ssims).mean().item(),
               "val_codebook_usage": float(usage), "val_perplexity": float(ppl), "val_clips": len(windows)}
    model.train()
    return metrics, first[0], first[1]


def save_recon_figure(video: torch.Tensor, recon: torch.Tensor, path: str | Path, clips: int = 4,
                      title: str = "") -> None:
    """Rows: original / reconstruction for ``clips`` clips; columns: every other frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(clips, video.shape[0])
    t_idx = list(range(0, video.shape[2], max(1, video.shape[2] // 8)))
    fig, axes = plt.subplots(2 * n, len(t_idx), figsize=(1.3 * len(t_idx), 1.35 * 2 * n), squeeze=False)
    for c in range(n):
        for j, t in enumerate(t_idx):
            for r, src in enumerate((video, recon)):
                ax = axes[2 * c + r][j]
                ax.imshow(src[c, :, t].permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel("input" if r == 0 else "recon", fontsize=7)
                if c == 0 and r == 0:
                    ax.set_title(f"t={t}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["build_config", "train_tokenizer", "evaluate_reconstruction", "save_recon_figure", "WindowBatches",
           "TrainResult", "count_parameters"]
