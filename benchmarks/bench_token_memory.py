"""Peak memory of one generator-training process over a token file: memory-mapped (now) vs loaded (before).

Writes a token folder as encode_tokens does (``<split>.npz`` via np.savez + meta.json) with --rows clips of 1024
tokens (uint16 ids and fp conditions, the paper's sizes per row), then in a fresh child process per case runs what
train_generator does with it: load_tokens (train split, fp mode), the checkpoint data identity, --steps batches of
--batch rows and the validation slices, and the tiny-preset generator's training steps on those batches. Reports the
process's peak resident set (VmHWM) and, at the end, its private (RssAnon) and file-backed shared (RssFile) pages.

    .venv/bin/python benchmarks/bench_token_memory.py --rows 65536 --steps 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

N, VOCAB = 1024, 8192


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024  # MiB
    return out


def child(folder: str, case: str, steps: int, batch: int) -> None:
    import torch

    from larp.generator import train as gt
    from larp.generator.model import ARGenerator
    from larp.generator.presets import get_preset

    torch.set_num_threads(1)
    before = _status()
    if case == "mmap":
        data = gt.load_tokens(folder, "train", "fp")
    else:  # what load_tokens did before: np.load of the members into process memory
        with np.load(Path(folder) / "train.npz") as z:
            data = gt.TokenData(tokens=z["tokens"], cond=z["fp_cond"], meta=json.loads((Path(folder) / "meta.json")
                                                                                       .read_text()))
        int(data.tokens.max()), int(data.cond.max())
    gt._data_identity(data)
    after_data = _status()
    model = ARGenerator(get_preset("tiny", mode="fp", vocab_size=VOCAB, num_tokens=N, num_classes=1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = gt.TokenBatches(data, batch, 1, 0, 0)
    for step in range(steps):
        tokens, cond = batches.batch_at(step)
        loss = model.loss(tokens, cond)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gt.evaluate_nll(model, data, device="cpu", limit=4 * batch, batch=batch)
    print(json.dumps({"case": case, "file_mib": (Path(folder) / "train.npz").stat().st_size / 2**20,
                      "baseline_mib": before["VmRSS"],
                      "after_data": after_data, "end": _status()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=65536)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "CASE"))
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.steps, a.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        np.savez(Path(tmp) / "train.npz", tokens=rng.integers(0, VOCAB, (a.rows, N), dtype=np.uint16),
                 fp_cond=rng.integers(0, VOCAB, (a.rows, N), dtype=np.uint16), labels=np.zeros(a.rows, np.int64))
        (Path(tmp) / "meta.json").write_text(json.dumps({"num_tokens": N, "codebook_size": VOCAB, "num_classes": 1,
                                                         "fp_context_frames": 5}))
        for case in ("load", "mmap"):
            out = subprocess.run([sys.executable, __file__, "--child", tmp, case, "--steps", str(a.steps),
                                  "--batch", str(a.batch)], capture_output=True, text=True, check=True)
            print(out.stdout.strip())


if __name__ == "__main__":
    main()
