"""The larp command: tokenize, reconstruct and generate videos of one's own with trained or imported models.

A thin layer over :mod:`larp.api` (see its docstring for the same operations from Python). Installed as a console
script by ``pip install -e .`` (``workflow/bin/setup`` does it); ``python -m larp.commands`` is the same.
Expected failures (a missing folder, an unreadable video, a bad class) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EPILOG = """\
examples (after `bash workflow/bin/run-main`):
  larp tokenize my.mp4 --tokenizer results/tokenizer/larp --out tokens.npy
  larp reconstruct my.mp4 --tokenizer results/tokenizer/larp --out recon.mp4 --side-by-side --scale 4
  larp decode tokens.npy --tokenizer results/tokenizer/larp --out decoded.mp4
  larp sample --generator results/generator/class-larp --class 3 --num 4 --out sample.mp4
  larp continue my.mp4 --generator results/generator/fp-larp --out predicted.mp4

Videos are decoded with decord, resized (short side, antialiased) and centre-cropped to the tokenizer's
resolution, and cut into consecutive non-overlapping clips of its frame count, exactly as extract_clips prepares
the training clips. MP4 outputs are H.264 (PyAV/libx264); several clips follow each other in time."""


def _video_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=float, default=8, help="playback rate of the MP4 (default: 8)")
    p.add_argument("--scale", type=int, default=1,
                   help="enlarge the frames by this integer factor (nearest neighbour) for viewing (default: 1)")


def _video_input(p: argparse.ArgumentParser, side_by_side: str | None = None) -> None:
    """The VIDEO argument and how its frames are read; ``side_by_side`` names what stands beside the output."""
    p.add_argument("video", metavar="VIDEO", help="a video file (anything FFmpeg reads)")
    p.add_argument("--stride", type=int, default=1, help="use every STRIDE-th frame (default: 1)")
    if side_by_side:
        p.add_argument("--side-by-side", action="store_true", help=f"{side_by_side} (left) beside the result")


def _out_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help=f"{what} to write")


def build() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="larp", description=__doc__.strip().splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("tokenize", help="a video -> token ids (.npy, one row per clip)",
                       description="Encode every clip of VIDEO with deterministic SVQ; write the token ids as an "
                                   ".npy array (clips, num_tokens) of int64 in [0, codebook size).")
    _video_input(t)
    t.add_argument("--tokenizer", required=True, metavar="DIR", help="a tokenizer folder (results/tokenizer/<name>)")
    _out_arg(t, "token ids (.npy)")

    r = sub.add_parser("reconstruct", help="a video -> its reconstruction through the tokenizer (MP4)",
                       description="Encode and decode every clip of VIDEO; write the reconstruction as an MP4.")
    _video_input(r, side_by_side="the input clip")
    r.add_argument("--tokenizer", required=True, metavar="DIR", help="a tokenizer folder")
    _out_arg(r, "MP4")
    r.add_argument("--tokens-out", metavar="FILE", help="also write the token ids (.npy)")
    _video_args(r)

    d = sub.add_parser("decode", help="token ids (.npy) -> video (MP4)",
                       description="Decode token ids (clips, num_tokens) written by `larp tokenize` or the "
                                   "pipeline (results/samples/<g>/tokens.npy) into an MP4.")
    d.add_argument("tokens", metavar="TOKENS", help="an .npy file of token ids")
    d.add_argument("--tokenizer", required=True, metavar="DIR", help="a tokenizer folder")
    _out_arg(d, "MP4")
    _video_args(d)

    s = sub.add_parser("sample", help="generate videos of a class (MP4)",
                       description="Sample NUM videos of one class with a class-conditional generator (KV cache, "
                                   "classifier-free guidance) and decode them through its tokenizer.")
    s.add_argument("--generator", required=True, metavar="DIR", help="a generator folder (results/generator/<name>)")
    s.add_argument("--tokenizer", metavar="DIR",
                   help="its tokenizer folder (default: results/tokenizer/<the generator's tokenizer> next to it)")
    s.add_argument("--class", dest="label", required=True, metavar="CLASS", help="class id or class name")
    s.add_argument("--num", type=int, default=1, help="videos to sample (default: 1)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--cfg-scale", type=float, default=1.25, help="classifier-free guidance (default: 1.25, paper)")
    s.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default: 1)")
    s.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (default: 0 = off)")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus mass (default: 1 = off)")
    _out_arg(s, "MP4")
    s.add_argument("--tokens-out", metavar="FILE", help="also write the sampled token ids (.npy)")
    _video_args(s)

    c = sub.add_parser("continue", help="predict the rest of each clip of a video from its first frames (MP4)",
                       description="Frame prediction: keep the first context frames of each clip of VIDEO, "
                                   "generate the clip with a frame-prediction generator, write the result.")
    _video_input(c, side_by_side="the real clip")
    c.add_argument("--generator", required=True, metavar="DIR", help="a frame-prediction generator folder")
    c.add_argument("--tokenizer", metavar="DIR", help="its tokenizer folder (default: found next to it)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _out_arg(c, "MP4")
    _video_args(c)
    return p


def _save_video(args: argparse.Namespace, clips: np.ndarray, real: np.ndarray | None = None) -> None:
    """Clips (N, T, H, W, 3) (beside ``real`` when given) -> one MP4, the clips one after the other."""
    from .api import write_video

    if real is not None:
        clips = np.concatenate([real, clips], axis=3)  # real left, output right
    frames = clips.reshape(-1, *clips.shape[2:])
    if args.scale > 1:
        frames = frames.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
    write_video(_out(args.out), frames, fps=args.fps)
    print(f"wrote {args.out}: {clips.shape[0]} clip(s) of {clips.shape[1]} frames, {frames.shape[2]}x{frames.shape[1]}"
          f" px at {args.fps:g} fps")


def _out(path: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _save_ids(path: str, ids: np.ndarray, codebook: int) -> None:
    np.save(_out(path), ids.astype(np.int64))
    print(f"wrote {path}: token ids {ids.shape} in [0, {codebook})")


def _dispatch(args: argparse.Namespace) -> None:
    from .api import Generator, Tokenizer
    from .runtime import resolve_device

    try:
        device = resolve_device(args.device)
    except RuntimeError as exc:  # cuda asked for, none visible
        raise ValueError(str(exc).replace("run.device", "--device")) from None
    if args.command in ("tokenize", "reconstruct", "decode"):
        tok = Tokenizer.load(args.tokenizer, device=device)
        if args.command == "decode":
            _save_video(args, tok.decode(np.load(args.tokens, allow_pickle=False)))
            return
        clips = tok.clips(args.video, stride=args.stride)
        ids = tok.encode(clips)
        if args.command == "tokenize":
            _save_ids(args.out, ids, tok.codebook_size)
            return
        if args.tokens_out:
            _save_ids(args.tokens_out, ids, tok.codebook_size)
        _save_video(args, tok.decode(ids), clips if args.side_by_side else None)
        return
    gen = Generator.load(args.generator, tokenizer=args.tokenizer, device=device)
    if args.command == "sample":
        ids = gen.sample_tokens(args.label, num_videos=args.num, seed=args.seed, cfg_scale=args.cfg_scale,
                                temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        if args.tokens_out:
            _save_ids(args.tokens_out, ids, gen.tokenizer.codebook_size)
        _save_video(args, gen.tokenizer.decode(ids))
        return
    clips = gen.tokenizer.clips(args.video, stride=args.stride)
    _save_video(args, gen.continue_clip(clips, seed=args.seed), clips if args.side_by_side else None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build().parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from .cli import expected_errors
    from .data.video import VideoError
    from .runtime import set_threads

    set_threads(args.threads)
    try:
        _dispatch(args)
    except (*expected_errors(), VideoError, ValueError) as exc:
        print(f"larp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
