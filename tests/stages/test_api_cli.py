"""The user API (larp.api) and the `larp` command on a video file the test writes, with tiny models saved in the
pipeline's folder layout (results/tokenizer/<t>, results/generator/<g>): tokenize, reconstruct, decode, sample,
continue; checks shapes, ids in range and that every MP4 decodes back (PyAV and decord)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import decord
import numpy as np
import pytest
import torch

from larp.api import Generator, Tokenizer, read_video, write_video
from larp.commands import main
from larp.generator.model import ARGenerator
from larp.generator.presets import get_preset
from larp.generator.video_io import read_mp4
from larp.io import save_weights
from larp.tokenizer.model import LARPTokenizer
from larp.tokenizer.presets import TOKENIZER_PRESETS

TOK = TOKENIZER_PRESETS["tiny"]  # 8 frames at 16 px, 8 tokens, 64 codes
CLASSES = ["red", "green", "blue"]
VIDEO_FRAMES, H, W = 20, 24, 32  # 2 clips of 8 frames (4 left over); decord reads these widths correctly


def _moving_square() -> np.ndarray:
    frames = np.full((VIDEO_FRAMES, H, W, 3), 40, np.uint8)
    for t in range(VIDEO_FRAMES):
        frames[t, 6:14, t:t + 8] = (230, 60, 30)
    return frames


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("api")
    torch.manual_seed(0)
    save_weights(tmp / "results/tokenizer/larp/model.safetensors", LARPTokenizer(TOK).state_dict(),
                 {"model_config": TOK.to_dict(), "variant": "larp"})
    for mode in ("class", "fp"):
        cfg = get_preset("tiny", mode=mode, vocab_size=TOK.codebook_size, num_tokens=TOK.num_latents,
                         num_classes=len(CLASSES))
        save_weights(tmp / f"results/generator/{mode}-larp/model.safetensors", ARGenerator(cfg).state_dict(),
                     {"model_config": cfg.to_dict(), "mode": mode, "tokenizer": "larp", "dataset": "synthetic",
                      "token_meta": {"class_names": CLASSES, "fp_context_frames": 2,
                                     "num_tokens": TOK.num_latents, "codebook_size": TOK.codebook_size}})
    write_video(tmp / "input.mp4", _moving_square(), fps=25)
    return tmp


def _check_mp4(path: Path, frames: int, height: int, width: int) -> np.ndarray:
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
    video = read_mp4(path)
    assert video.shape == (frames, height, width, 3) and video.dtype == np.uint8
    assert len(decord.VideoReader(str(path))) == frames  # what the pipeline's decoder makes of it
    return video


def test_written_video_reads_back(ws):
    back = read_video(ws / "input.mp4")
    assert back.shape == (VIDEO_FRAMES, H, W, 3)
    assert np.abs(back.astype(int) - _moving_square()).mean() < 6  # H.264 at crf 18: near-lossless
    assert read_video(ws / "input.mp4", resolution=16).shape == (VIDEO_FRAMES, 16, 16, 3)


def test_api_encode_decode_sample(ws):
    tok = Tokenizer.load(ws / "results/tokenizer/larp")
    ids = tok.encode(ws / "input.mp4")
    assert ids.shape == (2, TOK.num_latents) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < TOK.codebook_size
    assert tok.encode(_moving_square()).shape == ids.shape  # an array in memory: the same clips
    assert tok.decode(ids).shape == (2, 8, 16, 16, 3)
    assert tok.reconstruct(ws / "input.mp4").shape == (16, 16, 16, 3)
    with pytest.raises(ValueError, match="must lie in"):
        tok.decode(np.full((1, TOK.num_latents), TOK.codebook_size))

    gen = Generator.load(ws / "results/generator/class-larp")  # its tokenizer found in the pipeline layout
    a, b = gen.sample_tokens("blue", num_videos=2, seed=3), gen.sample_tokens(2, num_videos=2, seed=3)
    np.testing.assert_array_equal(a, b)  # class name and id agree; seeded
    assert gen.sample(0, num_videos=2).shape == (2, 8, 16, 16, 3)
    with pytest.raises(ValueError, match="class id"):
        gen.sample(3)
    fp = Generator.load(ws / "results/generator/fp-larp", tokenizer=tok)
    assert fp.continue_clip(ws / "input.mp4").shape == (2, 8, 16, 16, 3)


def test_cli_tokenize_reconstruct_sample(ws, capsys):
    tokens = ws / "out/tokens.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    larp = Path(sys.executable).parent / "larp"  # the console script pyproject.toml installs
    done = subprocess.run([str(larp), "--threads", "1", "tokenize", str(ws / "input.mp4"), "--tokenizer",
                           str(ws / "results/tokenizer/larp"), "--out", str(tokens)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ids = np.load(tokens)
    assert ids.shape == (2, TOK.num_latents) and 0 <= ids.min() and ids.max() < TOK.codebook_size

    tok_dir = str(ws / "results/tokenizer/larp")
    assert main(["--threads", "1", "reconstruct", str(ws / "input.mp4"), "--tokenizer", tok_dir,
                 "--out", str(ws / "out/recon.mp4"), "--side-by-side", "--scale", "2"]) == 0
    _check_mp4(ws / "out/recon.mp4", 16, 32, 64)  # 2 clips x 8 frames; input | recon, enlarged 2x
    assert main(["decode", str(tokens), "--tokenizer", tok_dir, "--out", str(ws / "out/decoded.mp4")]) == 0
    _check_mp4(ws / "out/decoded.mp4", 16, 16, 16)
    assert main(["sample", "--generator", str(ws / "results/generator/class-larp"), "--class", "1", "--num", "3",
                 "--out", str(ws / "out/sample.mp4"), "--tokens-out", str(ws / "out/sample.npy")]) == 0
    _check_mp4(ws / "out/sample.mp4", 24, 16, 16)
    sampled = np.load(ws / "out/sample.npy")
    assert sampled.shape == (3, TOK.num_latents) and sampled.max() < TOK.codebook_size
    assert main(["continue", str(ws / "input.mp4"), "--generator", str(ws / "results/generator/fp-larp"),
                 "--out", str(ws / "out/pred.mp4")]) == 0
    _check_mp4(ws / "out/pred.mp4", 16, 16, 16)
    capsys.readouterr()
    # expected failures: one line, exit 2
    assert main(["sample", "--generator", str(ws / "results/generator/class-larp"), "--class", "nope",
                 "--out", str(ws / "out/x.mp4")]) == 2
    assert "unknown class 'nope'" in capsys.readouterr().err
    assert main(["tokenize", str(ws / "missing.mp4"), "--tokenizer", tok_dir, "--out", str(tokens)]) == 2
    assert "missing file" in capsys.readouterr().err


def test_cli_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("tokenize", "reconstruct", "decode", "sample", "continue"):
        assert command in out
