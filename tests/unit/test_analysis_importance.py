"""Token importance, heatmaps and the repetition curve of paper App. B.2-B.3, with a fake and the real tokenizer."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from larp.analysis.importance import (
    curve_of,
    redundancy_curve,
    redundancy_gains,
    redundancy_scores,
    repeat_frames,
    token_heatmap,
    token_importance,
)
from larp.analysis.plots import plot_heatmaps, plot_importance, plot_redundancy
from larp.metrics.recon import psnr_per_clip

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T, H, W = 4, 6, 6
LIVE = T  # tokens 0..T-1 each pick the picture of one frame; tokens T, T+1 never reach the decoder


class FrameTableTokenizer:
    """A deterministic stand-in: token t < T picks frame t's picture from a fixed random table (K, 3, H, W);
    the last two tokens carry the video's mean brightness but the decoder ignores them. encode picks, per
    frame, the table entry nearest in MSE, so any other code can only lower the PSNR of that frame.
    Records every batch of ids it decodes."""

    def __init__(self, codebook_size=16, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.rand(codebook_size, 3, H, W, generator=g)  # (K, 3, H, W)
        self.cfg = SimpleNamespace(codebook_size=codebook_size, num_latents=LIVE + 2)
        self.decoded: list[torch.Tensor] = []

    def encode(self, video, deterministic=False):
        assert deterministic, "the analysis must use deterministic tokens"
        frames = video.permute(0, 2, 1, 3, 4)  # (B, T, 3, H, W)
        dist = (frames[:, :, None] - self.table[None, None]).square().flatten(3).mean(-1)  # (B, T, K)
        live = dist.argmin(-1)  # (B, T)
        k = self.cfg.codebook_size
        dead = (video.mean((1, 2, 3, 4)) * k).long().clamp(0, k - 1)  # (B,)
        return SimpleNamespace(indices=torch.cat([live, dead[:, None], (k - 1 - dead)[:, None]], 1))

    def decode_indices(self, indices):
        self.decoded.append(indices.clone())
        return self.table[indices[:, :LIVE]].permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)


def fake_videos(tok, v=3, seed=1):
    """Videos near table entries (so the live tokens are meaningful), with noise."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, tok.cfg.codebook_size, (v, T), generator=g)
    clean = tok.table[pick].permute(0, 2, 1, 3, 4)  # (V, 3, T, H, W)
    return (clean + 0.05 * torch.randn(clean.shape, generator=g)).clamp(0, 1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------
# token importance


def test_importance_shape_sign_and_dead_tokens():
    tok = FrameTableTokenizer()
    drops = token_importance(tok, fake_videos(tok), gen(0))
    assert drops.shape == (3, LIVE + 2) and drops.dtype == np.float64
    assert (drops[:, :LIVE] > 0).all()  # the encoder's choice is the best code per frame
    assert (drops[:, LIVE:] == 0).all()  # tokens the decoder never reads cost exactly nothing


def test_importance_equals_the_psnr_drop_of_the_recorded_replacements():
    tok = FrameTableTokenizer()
    videos = fake_videos(tok)
    original = tok.encode(videos, deterministic=True).indices
    drops = token_importance(tok, videos, gen(0), batch_size=64)
    modified = torch.cat(tok.decoded[1:])  # first call: the unmodified reconstructions
    assert modified.shape == (3 * (LIVE + 2), LIVE + 2)
    base = psnr_per_clip(tok.decode_indices(original), videos)
    for v in range(3):
        rows = modified[v * (LIVE + 2) : (v + 1) * (LIVE + 2)]  # (n, n): row i changes token i
        changed = rows != original[v]
        assert torch.equal(changed, torch.eye(LIVE + 2, dtype=torch.bool))  # one token, always a new code
        expected = base[v] - psnr_per_clip(tok.decode_indices(rows), videos[v : v + 1].expand(LIVE + 2, -1, -1, -1, -1))
        np.testing.assert_allclose(drops[v], expected.numpy(), rtol=1e-12, atol=1e-12)


def test_importance_is_deterministic_and_batch_independent():
    tok = FrameTableTokenizer()
    videos = fake_videos(tok)
    a = token_importance(tok, videos, gen(7), batch_size=64)
    tok.decoded.clear()
    b = token_importance(tok, videos, gen(7), batch_size=4)
    assert max(len(ids) for ids in tok.decoded) <= 4  # decoded in chunks of batch_size
    np.testing.assert_array_equal(a, b)
    c = token_importance(tok, videos, gen(8))
    assert not np.array_equal(a, c)  # other replacement codes


def test_replacement_with_two_codes_is_the_other_code():
    tok = FrameTableTokenizer(codebook_size=2)
    videos = fake_videos(tok, v=2)
    original = tok.encode(videos, deterministic=True).indices
    token_importance(tok, videos, gen(0))
    rows = torch.cat(tok.decoded[1:]).view(2, LIVE + 2, LIVE + 2)  # (V, n, n)
    diagonal = rows.diagonal(dim1=1, dim2=2)  # (V, n): the replaced token of each modified copy
    assert torch.equal(diagonal, 1 - original)


def test_replacements_cover_every_other_code():
    tok = FrameTableTokenizer(codebook_size=4)
    videos = fake_videos(tok, v=40)
    original = tok.encode(videos, deterministic=True).indices
    token_importance(tok, videos, gen(3))
    new = torch.cat(tok.decoded[1:]).view(40, LIVE + 2, LIVE + 2).diagonal(dim1=1, dim2=2)
    assert (new != original).all()
    for code in range(4):  # each code is drawn as a replacement of tokens that held another code
        assert (new[original != code] == code).any()


# ----------------------------------------------------------------------------------------------------------
# heatmap


def test_heatmap_shows_the_region_of_the_token():
    tok = FrameTableTokenizer()
    videos = fake_videos(tok)
    original = tok.encode(videos, deterministic=True).indices
    code = int(original[0, 1])  # video 0 already holds the replacement code at index 1: it gets the next one
    heat = token_heatmap(tok, videos, index=1, replacement=code)
    assert heat.shape == (3, T, H, W)
    assert (heat[:, [0, 2, 3]] == 0).all()  # token 1 decodes frame 1 only
    expected0 = (tok.table[code] - tok.table[(code + 1) % 16]).abs().mean(0)
    torch.testing.assert_close(heat[0, 1], expected0)
    for v in (1, 2):
        expected = (tok.table[original[v, 1]] - tok.table[code]).abs().mean(0)
        torch.testing.assert_close(heat[v, 1], expected)
    assert (token_heatmap(tok, videos, index=LIVE) == 0).all()  # a token the decoder ignores


def test_heatmap_refuses_bad_index_or_code():
    tok = FrameTableTokenizer()
    with pytest.raises(ValueError, match="token index"):
        token_heatmap(tok, fake_videos(tok), index=LIVE + 2)
    with pytest.raises(ValueError, match="replacement code"):
        token_heatmap(tok, fake_videos(tok), index=0, replacement=16)


# ----------------------------------------------------------------------------------------------------------
# repetition (App. B.2)


def test_repeat_frames_levels():
    videos = torch.rand(2, 3, 8, 4, 4, generator=gen(0))
    assert torch.equal(repeat_frames(videos, 1), videos)
    full = repeat_frames(videos, 8)
    assert torch.equal(full, videos[:, :, :1].expand_as(videos))
    two = repeat_frames(videos, 2)
    assert torch.equal(two[:, :, :4], videos[:, :, :4]) and torch.equal(two[:, :, 4:], videos[:, :, :4])
    assert two.shape == videos.shape


@pytest.mark.parametrize("level", [0, 3, 16, -2])
def test_repeat_frames_refuses_levels_that_do_not_divide_t(level):
    with pytest.raises(ValueError, match="repetition level"):
        repeat_frames(torch.zeros(1, 3, 8, 2, 2), level)


def test_redundancy_scores_are_per_video_psnr_and_the_curve_summarises_them():
    tok = FrameTableTokenizer()
    videos = fake_videos(tok, v=3)
    scores = redundancy_scores(tok, videos, levels=(4, 1), batch_size=2)
    assert scores["level"].tolist() == [4, 4, 4, 1, 1, 1] and scores["video"].tolist() == [0, 1, 2] * 2
    rep = repeat_frames(videos, 4)
    expected = psnr_per_clip(tok.decode_indices(tok.encode(rep, True).indices), rep).numpy()
    np.testing.assert_allclose(scores["psnr"].to_numpy()[:3], expected)
    curve = curve_of(scores)
    assert curve["level"].tolist() == [4, 1]  # the order given, not sorted
    assert curve["psnr_mean"].iloc[0] == pytest.approx(expected.mean())
    assert curve["psnr_std"].iloc[0] == pytest.approx(expected.std())


def test_redundancy_curve_with_fake_tokenizer():
    tok = FrameTableTokenizer()
    videos = fake_videos(tok, v=5)
    df = redundancy_curve(tok, videos, levels=(1, 2, 4), batch_size=2)
    assert list(df.columns) == ["level", "psnr_mean", "psnr_std", "num_videos"]
    assert df["level"].tolist() == [1, 2, 4] and (df["num_videos"] == 5).all()
    assert np.isfinite(df[["psnr_mean", "psnr_std"]].to_numpy()).all()
    expected = psnr_per_clip(tok.decode_indices(tok.encode(repeat_frames(videos, 2), True).indices), repeat_frames(videos, 2))
    assert df.loc[1, "psnr_mean"] == pytest.approx(expected.mean().item())
    tok.decoded.clear()
    with pytest.raises(ValueError, match="repetition level"):
        redundancy_curve(tok, videos, levels=(1, 3))
    assert tok.decoded == []  # refused before any model call


# ----------------------------------------------------------------------------------------------------------
# the real tokenizer (tiny preset)


@pytest.fixture(scope="module")
def tiny_model():
    from larp.tokenizer.model import LARPTokenizer, TokenizerConfig
    from larp.tokenizer.presets import TOKENIZER_PRESETS

    # zero_init_output=False: a fresh model with the zeroed output layer decodes every id to black
    cfg: TokenizerConfig = dataclasses.replace(TOKENIZER_PRESETS["tiny"], prior=None, zero_init_output=False)
    torch.manual_seed(0)
    return LARPTokenizer(cfg).eval()


def test_real_tokenizer_importance_heatmap_and_redundancy(tiny_model):
    cfg = tiny_model.cfg
    videos = torch.rand(2, 3, cfg.frames, cfg.resolution, cfg.resolution, generator=gen(0))
    drops = token_importance(tiny_model, videos, gen(0), batch_size=4)
    assert drops.shape == (2, 8) and np.isfinite(drops).all() and (drops != 0).any()
    np.testing.assert_array_equal(drops, token_importance(tiny_model, videos, gen(0), batch_size=8))
    heat = token_heatmap(tiny_model, videos, index=3)
    assert heat.shape == (2, cfg.frames, cfg.resolution, cfg.resolution) and torch.isfinite(heat).all()
    df = redundancy_curve(tiny_model, videos, levels=(1, 2, 4, 8))
    assert df["level"].tolist() == [1, 2, 4, 8] and np.isfinite(df["psnr_mean"]).all()


# ----------------------------------------------------------------------------------------------------------
# figures


def test_importance_figures_are_written(tmp_path):
    tok = FrameTableTokenizer()
    videos = fake_videos(tok, v=7)
    drops = token_importance(tok, videos, gen(0))
    heat = token_heatmap(tok, videos[:2], index=2)
    curves = {"fake": redundancy_curve(tok, videos, levels=(1, 2, 4)),
              "other": pd.DataFrame({"level": [1, 2, 4], "psnr_mean": [20.0, 22.0, 25.0], "psnr_std": [1.0] * 3})}
    outs = [plot_importance(drops, tmp_path / "importance.png"),
            plot_heatmaps(heat, tmp_path / "heat.png"),
            plot_heatmaps(torch.zeros(1, T, H, W), tmp_path / "heat0.png", frames=(1,)),
            plot_redundancy(curves, tmp_path / "redundancy.png")]
    for out in outs:
        assert out.parent == tmp_path and out.stat().st_size > 1000 and out.read_bytes().startswith(PNG_MAGIC)
    assert len(list(tmp_path.iterdir())) == 4  # no temporary files left behind
    with pytest.raises(ValueError, match="frames"):
        plot_heatmaps(heat, tmp_path / "bad.png", frames=(T,))


def test_redundancy_gains_are_per_video_highest_minus_lowest_level():
    scores = pd.DataFrame({"level": [1, 1, 4, 4, 16, 16], "video": [0, 1, 0, 1, 0, 1],
                           "psnr": [20.0, 30.0, 21.0, 29.0, 23.5, 28.0]})
    gains = redundancy_gains(scores)
    assert gains.to_dict() == {0: 3.5, 1: -2.0}
