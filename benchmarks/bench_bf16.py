"""bf16 against fp32 on this CPU: matmuls and one embedded tokenizer and generator training step, side by side.

`tokenizer.cpu_bf16: auto` turns bf16 autocast on only where `larp.runtime.cpu_has_fast_bf16()` finds bf16 matrix
units (AMX tiles or AVX512-BF16). This script prints what it found and the measured speed of both precisions, so
the choice can be checked on any machine; where the CPU has no such units oneDNN emulates bf16 and it is slower.
It also prints the reconstruction-loss difference between the two precisions on the same weights and batch.

    .venv/bin/python benchmarks/bench_bf16.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from larp.generator.presets import get_preset as get_generator_preset
from larp.generator.model import ARGenerator
from larp.runtime import autocast_for, cpu_has_fast_bf16
from larp.tokenizer.model import LARPTokenizer
from larp.tokenizer.presets import get_preset


def best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmuls(sizes: list[int], repeats: int) -> None:
    print("| matmul | fp32 ms | bf16 ms | bf16 speed-up |")
    print("|---|---|---|---|")
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        t32 = best_time(lambda: a @ b, repeats)
        a16, b16 = a.bfloat16(), b.bfloat16()
        t16 = best_time(lambda: a16 @ b16, repeats)
        print(f"| {n}x{n} | {1e3 * t32:.2f} | {1e3 * t16:.2f} | {t32 / t16:.2f}x |")


def print_step_row(label: str, step, losses: dict, repeats: int) -> None:
    """One table row: best-of-``repeats`` time of ``step(bf16)`` in fp32 and in bf16, and the loss each gave."""
    t32 = best_time(lambda: step(False), repeats)
    t16 = best_time(lambda: step(True), repeats)
    print(f"| {label} | {1e3 * t32:.0f} | {1e3 * t16:.0f} | {t32 / t16:.2f}x | "
          f"loss fp32 {losses[False]:.6f} vs bf16 {losses[True]:.6f} |")


def tokenizer_step(kind: str, batch: int, repeats: int) -> None:
    cfg = get_preset("embedded", frames=16, resolution=32, num_tokens=64, codebook_size=512, kind=kind,
                     zero_init_output=False)
    torch.manual_seed(0)
    model = LARPTokenizer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    video = torch.rand(batch, 3, 16, 32, 32)
    losses = {}

    def step(bf16: bool) -> None:
        with autocast_for("cpu", bf16):
            out = model(video, deterministic=True)
            prior = model.prior_loss(out.quant, ss_rate=0.5) if model.prior is not None else None
        loss = (out.recon.float() - video).square().mean()
        losses[bf16] = loss.item()
        total = loss + 0.1 * out.quant.loss + (0.06 * prior.loss if prior is not None else 0)
        opt.zero_grad(set_to_none=True)
        total.backward()

    print_step_row(f"embedded {kind}, batch {batch}, forward+backward", step, losses, repeats)


def generator_step(mode: str, batch: int, repeats: int) -> None:
    """One embedded generator training step (params.yaml generator.model: width 192, depth 4, 64-token videos,
    512 codes, 10 classes), fp32 against bf16 autocast with the loss in fp32 as in larp.generator.train."""
    cfg = get_generator_preset("embedded", width=192, depth=4, heads=3, mode=mode, vocab_size=512, num_tokens=64,
                               num_classes=10)
    torch.manual_seed(0)
    model = ARGenerator(cfg)
    # the official head starts at zero, which makes every loss ln(vocab) in both precisions: give it trained-like
    # weights so the loss column compares fp32 and bf16 numerics
    torch.nn.init.normal_(model.output.weight, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, 512, (batch, 64))
    cond = torch.randint(0, 10, (batch,)) if mode == "class" else torch.randint(0, 512, (batch, 64))
    losses = {}

    def step(bf16: bool) -> None:
        with autocast_for("cpu", bf16):
            logits = model(tokens, cond)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten())
        losses[bf16] = loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()

    print_step_row(f"embedded generator ({mode}), batch {batch}, forward+backward", step, losses, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="tokenizer batch (params.yaml tokenizer.batch_size)")
    parser.add_argument("--gen-batch", type=int, default=32, help="generator batch (generator.batch_size)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.cpu
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}; AMX tiles {cpu._is_amx_tile_supported()}, "
          f"AVX512-BF16 {cpu._is_avx512_bf16_supported()} -> cpu_bf16: auto = {cpu_has_fast_bf16()}")
    matmuls([256, 512, 1024], args.repeats)
    print()
    print("| tokenizer step | fp32 ms | bf16 ms | bf16 speed-up | loss |")
    print("|---|---|---|---|---|")
    for kind in ("holistic", "patchwise"):
        tokenizer_step(kind, args.batch, args.repeats)
    for mode in ("class", "fp"):
        generator_step(mode, args.gen_batch, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
