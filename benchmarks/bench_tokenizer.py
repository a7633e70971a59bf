"""Benchmark of one LARP tokenizer training step on CPU, against the measured fp32 matmul peak.

One step = tokenizer forward + backward with L1 + 0.1 loss_q + 0.06 prior loss (2 scheduled-sampling rounds)
+ 0.3 GAN generator loss, one discriminator step (real + fake, LeCam), and both Adam updates. It is timed
for the "embedded" preset (eager and, unless --no-compile, with torch.compile on every transformer block) and
for LARP-B at paper resolution (batch 1, 16x128x128, discriminator of the official script).
Achieved GFLOP/s counts matmul FLOPs from `estimate_flops`: 3x forward for the tokenizer, the prior and the
discriminator's own step (forward + backward), 2x for the discriminator inside the generator loss (its
parameters are frozen there, so its backward computes input gradients only).

    .venv/bin/python benchmarks/bench_tokenizer.py --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from dataclasses import dataclass

import torch

from larp.tokenizer.losses import Discriminator, DiscriminatorConfig, LeCam, d_loss_ns_smooth, g_loss_ns, l1_loss
from larp.tokenizer.model import Block, LARPTokenizer, TokenizerConfig
from larp.tokenizer.presets import count_parameters, estimate_flops, get_preset
from larp.tokenizer.prior import PriorBlock


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` fp32 GFLOP/s of a (size x size) @ (size x size) matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


@dataclass
class Trainer:
    """The models and optimisers of one training step (hyper-parameters of paper A.1 / facts §4)."""

    model: LARPTokenizer
    disc: Discriminator
    lecam: LeCam
    opt: torch.optim.Adam
    d_opt: torch.optim.Adam

    @classmethod
    def build(cls, cfg: TokenizerConfig, disc_cfg: DiscriminatorConfig) -> Trainer:
        model, disc = LARPTokenizer(cfg), Discriminator(disc_cfg)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
        d_opt = torch.optim.Adam(disc.parameters(), lr=3e-5, betas=(0.5, 0.9))
        return cls(model, disc, LeCam(), opt, d_opt)

    def compile_blocks(self) -> None:
        """torch.compile each transformer block in place (the step itself has data-dependent sampling)."""
        for module in [*self.model.modules(), *self.disc.modules()]:
            if isinstance(module, (Block, PriorBlock)):
                module.compile()

    def step(self, video: torch.Tensor) -> float:
        """One full training step; returns the generator loss."""
        out = self.model(video)
        prior = self.model.prior_loss(out.quant, ss_rate=0.5, n_rounds=2)
        # Discriminator step on the detached reconstruction.
        real, fake = self.disc(video), self.disc(out.recon.detach())
        d_loss = d_loss_ns_smooth(real, fake) + 1e-3 * self.lecam(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        # Generator step with the discriminator frozen.
        self.disc.requires_grad_(False)
        g_adv = g_loss_ns(self.disc(out.recon))
        loss = l1_loss(out.recon, video) + 0.1 * out.quant.loss + 0.06 * prior.loss + 0.3 * g_adv
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.disc.requires_grad_(True)
        return loss.item()


def step_flops(cfg: TokenizerConfig, disc_cfg: DiscriminatorConfig, batch: int) -> float:
    f = estimate_flops(cfg, batch, disc_cfg, prior_rounds=2)
    return 3 * (f["total"] - f["discriminator"]) + (2 * 3 + 2) * f["discriminator"]


def time_steps(trainer: Trainer, video: torch.Tensor, warmup: int, steps: int) -> tuple[float, list[float]]:
    """(seconds of the warm-up steps, seconds of each timed step)."""
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.step(video)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step(video)
        times.append(time.perf_counter() - start)
    return first, times


def report(name: str, flops: float, batch: int, times: list[float], peak: float) -> None:
    """Best and median step: the CPU is shared, so the best step is the least disturbed measurement."""
    best, median = min(times), statistics.median(times)
    gflops = flops / best / 1e9
    print(f"  {name:<22} best {best:7.3f} s/step (median {median:.3f}, {len(times)} steps)  "
          f"{batch / best:6.2f} clips/s  {gflops:6.1f} GFLOP/s  {100 * gflops / peak:5.1f} % of peak")


def measure(name: str, trainer: Trainer, video: torch.Tensor, warmup: int, steps: int) -> tuple[str, list[float]]:
    first, times = time_steps(trainer, video, warmup, steps)
    print(f"  ({name}: {warmup} warm-up step(s) took {first:.1f} s)")
    return name, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared: use 1)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps for the embedded preset (0: skip it)")
    parser.add_argument("--batch", type=int, default=8, help="clips per step for the embedded preset")
    parser.add_argument("--heads", type=int, default=None, help="override the embedded heads (tokenizer, prior, disc)")
    parser.add_argument("--larp-b-steps", type=int, default=1, help="timed LARP-B steps after one warm-up (0: skip)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_peak()
    print(f"torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"fp32 matmul peak (2048^3): {peak:.1f} GFLOP/s")

    # ----------------------------------------------------------------------------------------------------
    if args.steps > 0:
        cfg = get_preset("embedded")
        heads = args.heads or cfg.heads
        cfg = dataclasses.replace(cfg, heads=heads, prior=dataclasses.replace(cfg.prior, heads=heads))
        disc_heads = args.heads or 4  # params.yaml tokenizer.discriminator: width 128, depth 2, heads 4
        disc_cfg = DiscriminatorConfig(128, 2, disc_heads, frames=cfg.frames, resolution=cfg.resolution)
        video = torch.rand(args.batch, 3, cfg.frames, cfg.resolution, cfg.resolution)
        trainer = Trainer.build(cfg, disc_cfg)
        flops = step_flops(cfg, disc_cfg, args.batch)
        f = estimate_flops(cfg, args.batch, disc_cfg)
        print(f"embedded (heads {heads}, disc width/depth/heads {disc_cfg.width}/{disc_cfg.depth}/{disc_cfg.heads}): "
              f"{count_parameters(trainer.model):,} params (+ prior {count_parameters(trainer.model.prior, True):,}, "
              f"disc {count_parameters(trainer.disc):,}); batch {args.batch}; {flops / 1e9:.1f} GFLOP/step")
        print("  forward GFLOP: " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in f.items()))
        results = [measure("eager", trainer, video, 1, args.steps)]
        if not args.no_compile:
            trainer.compile_blocks()
            results.append(measure("torch.compile(blocks)", trainer, video, 2, args.steps))
        peak_end = matmul_peak()
        print(f"  matmul peak after: {peak_end:.1f} GFLOP/s; percentages below use the higher of the two")
        peak = max(peak, peak_end)
        for name, times in results:
            report(name, flops, args.batch, times, peak)

    # ----------------------------------------------------------------------------------------------------
    if args.larp_b_steps > 0:
        cfg = get_preset("larp-B")
        disc_cfg = DiscriminatorConfig()  # official script: 512 wide, 12 layers, 8 heads
        video = torch.rand(1, 3, cfg.frames, cfg.resolution, cfg.resolution)
        trainer = Trainer.build(cfg, disc_cfg)
        flops = step_flops(cfg, disc_cfg, 1)
        print(f"larp-B: batch 1, 16x128x128, disc 512/12/8, {flops / 1e9:.0f} GFLOP/step")
        report("eager", flops, 1, measure("eager", trainer, video, 1, args.larp_b_steps)[1], peak)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
