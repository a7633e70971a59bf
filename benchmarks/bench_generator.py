"""Benchmark the AR generator on CPU: sampling throughput with vs without the KV cache, and training step rate.

Cases (preset "embedded", class mode, CFG 1.25 as in the paper, so the model batch is 2x --batch):
- 128 tokens, vocab 1024 (the embedded default length): both paths generate the whole sequence.
- 1024 tokens, vocab 8192 (the paper's length): the cached path generates the whole sequence; the no-cache path
  is too slow on a shared CPU, so it times --probe-steps single steps at evenly spaced prefix lengths and
  estimates the whole generation as n x their mean (midpoint rule; the per-step cost grows with the prefix).
Training: forward + loss + backward + AdamW step at 128 tokens / vocab 1024, batch --train-batch.

Usage (the CPU is shared: measure with one thread):
    .venv/bin/python benchmarks/bench_generator.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn

from larp.generator.model import ARGenerator
from larp.generator.presets import count_parameters, get_preset, param_groups
from larp.generator.sampling import generate, next_token_logits_full

CASES = [(128, 1024), (1024, 8192)]  # (tokens per video, vocabulary)


def build(preset: str, num_tokens: int, vocab_size: int) -> ARGenerator:
    """A preset model with a random (not zero) head, so sampling draws from a non-uniform distribution."""
    torch.manual_seed(0)
    model = ARGenerator(get_preset(preset, num_tokens=num_tokens, vocab_size=vocab_size))
    nn.init.normal_(model.output.weight, std=0.02)
    return model.eval()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def uncached_seconds(model: ARGenerator, labels: torch.Tensor, cfg_scale: float, probe_steps: int) -> float:
    """Estimated seconds to generate n tokens without a cache, from probe_steps recompute steps at prefix
    lengths (k + 0.5) * n / probe_steps (the same calls generate(use_cache=False) makes, CFG doubling included)."""
    n = model.config.num_tokens
    cond = torch.cat([labels, torch.full_like(labels, model.config.num_classes)]) if cfg_scale != 1.0 else labels
    lengths = [int((k + 0.5) * n / probe_steps) for k in range(probe_steps)]
    prefixes = [torch.randint(0, model.config.vocab_size, (cond.shape[0], length)) for length in lengths]
    with torch.inference_mode():
        seconds = [timed(lambda p=p: next_token_logits_full(model, cond, p)) for p in prefixes]
    print(
        f"    no-cache step time at prefix {lengths[-1]}: {seconds[-1] * 1e3:.0f} ms; "
        f"mean over prefixes {lengths}: {sum(seconds) / len(seconds) * 1e3:.0f} ms"
    )
    return n * sum(seconds) / len(seconds)


def bench_sampling(args: argparse.Namespace) -> None:
    print(f"== sampling: preset {args.preset}, batch {args.batch}, cfg {args.cfg_scale}, threads {args.threads}")
    for n, vocab in CASES:
        model = build(args.preset, n, vocab)
        print(f"  n={n:5d} V={vocab:5d} ({count_parameters(model) / 1e6:.2f}M params)")
        labels = torch.randint(0, model.config.num_classes, (args.batch,))
        tokens = args.batch * n
        gen = torch.Generator().manual_seed(0)
        t_cache = timed(lambda: generate(model, labels, cfg_scale=args.cfg_scale, generator=gen))
        if n <= args.full_uncached_max:
            t_full = timed(lambda: generate(model, labels, cfg_scale=args.cfg_scale, generator=gen, use_cache=False))
            how = "measured over the whole generation"
        else:
            t_full = uncached_seconds(model, labels, args.cfg_scale, args.probe_steps)
            how = f"ESTIMATED from {args.probe_steps} evenly spaced steps (whole generation too slow on this CPU)"
        print(f"    KV cache : {tokens / t_cache:9.1f} tokens/s  ({t_cache:.2f} s for {tokens} tokens)")
        print(f"    no cache : {tokens / t_full:9.1f} tokens/s  ({t_full:.2f} s; {how})")
        print(f"    speed-up : {t_full / t_cache:.1f}x")


def bench_training(args: argparse.Namespace) -> None:
    n, vocab = CASES[0]
    model = build(args.preset, n, vocab).train()
    optimizer = torch.optim.AdamW(param_groups(model, 0.05), lr=6e-4, betas=(0.9, 0.95))
    tokens = torch.randint(0, vocab, (args.train_batch, n))
    labels = torch.randint(0, model.config.num_classes, (args.train_batch,))

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(tokens, labels).backward()
        optimizer.step()

    train_step()  # warm-up (allocations, AdamW state)
    seconds = timed(lambda: [train_step() for _ in range(args.train_steps)]) / args.train_steps
    print(f"== training: preset {args.preset}, n={n}, V={vocab}, batch {args.train_batch}, fp32, AdamW")
    print(f"    {1 / seconds:.2f} steps/s, {args.train_batch * n / seconds:.0f} tokens/s ({seconds * 1e3:.0f} ms/step)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--batch", type=int, default=8, help="videos per sampling batch (doubled by CFG)")
    parser.add_argument("--train-batch", type=int, default=16, help="training batch size")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps after one warm-up step")
    parser.add_argument("--preset", default="embedded", help="generator preset (vocab/tokens set per case)")
    parser.add_argument("--cfg-scale", type=float, default=1.25, help="CFG scale (paper App. A.2: 1.25)")
    parser.add_argument("--probe-steps", type=int, default=4, help="no-cache steps timed when n is too long")
    parser.add_argument("--full-uncached-max", type=int, default=128, help="longest n generated fully without cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_sampling(args)
    bench_training(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
