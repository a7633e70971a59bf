"""Python API for one's own videos: load a trained (or imported) tokenizer or generator from its folder, turn a video
file or array into token ids, token ids back into frames, sample a class or continue a clip.

A *tokenizer folder* is a ``train_tokenizer`` or ``import_official`` output (``results/tokenizer/<variant>/``); a
*generator folder* a ``train_generator`` or ``import_official`` output (``results/generator/<name>/``). Each holds
``model.safetensors`` with its configuration in the header, so the folder alone rebuilds the model (loaded with
``larp.models.load_tokenizer`` / ``larp.models.load_generator``: safetensors, never a pickle).

Frames are uint8 ``(T, H, W, 3)`` RGB arrays, what a video decoder returns; clips are the tokenizer's
``frames`` x ``resolution`` x ``resolution``::

    from larp.api import Tokenizer, Generator, write_video

    tok = Tokenizer.load("results/tokenizer/larp")
    ids = tok.encode("my_video.mp4")          # (clips, num_tokens) int64: consecutive non-overlapping clips
    frames = tok.decode(ids)                  # (clips, T, R, R, 3) uint8
    write_video("recon.mp4", tok.reconstruct("my_video.mp4"))  # (clips * T, R, R, 3), H.264

    gen = Generator.load("results/generator/class-larp")       # finds results/tokenizer/<its tokenizer>
    write_video("class3.mp4", gen.sample(3, num_videos=1, seed=0)[0])

The same operations are the ``larp`` command (``larp --help``): ``larp tokenize``, ``larp reconstruct``,
``larp sample``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.clips import to_float_video
from .generator.video_io import read_mp4, to_uint8, write_mp4

VideoLike = str | os.PathLike | np.ndarray

__all__ = ["Generator", "Tokenizer", "read_video", "write_video"]


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8) -> Path:
    """Write uint8 frames (T, H, W, 3) as an H.264 MP4 (MPEG-4 part 2 if PyAV lacks libx264, with a warning)."""
    return write_mp4(path, frames, fps=fps)


def read_video(path: str | os.PathLike, *, resolution: int | None = None, stride: int = 1,
               max_frames: int | None = None, min_frames: int = 1) -> np.ndarray:
    """Decode a video file to uint8 (T, H, W, 3): every ``stride``-th frame, at most ``max_frames``; with
    ``resolution`` the short side is resized (antialiased) and centre-cropped to ``resolution`` x ``resolution``,
    exactly as ``extract_clips`` prepares the training clips. Unusable files raise ``larp.data.video.VideoError``."""
    from .data.video import decode_frames, quiet_decord

    if resolution is None:
        frames = read_mp4(path)[::stride]
        return frames[:max_frames] if max_frames is not None else frames
    quiet_decord()
    frames, _ = decode_frames(path, stride=stride, resolution=resolution, min_frames=min_frames,
                              max_frames=max_frames)
    return frames


@dataclass
class Tokenizer:
    """A trained LARP tokenizer (holistic or patchwise) and the metadata it was saved with."""

    model: Any
    meta: dict[str, Any] = field(repr=False)
    device: str = "cpu"

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "cpu") -> Tokenizer:
        """Load ``<folder>/model.safetensors`` (a train_tokenizer or import_official output)."""
        from .models import load_tokenizer

        model, meta = load_tokenizer(folder, device=device)
        return cls(model, meta, device)

    # the clip geometry and vocabulary
    @property
    def frames(self) -> int:
        return self.model.cfg.frames

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution

    @property
    def num_tokens(self) -> int:
        return self.model.cfg.num_latents

    @property
    def codebook_size(self) -> int:
        return self.model.cfg.codebook_size

    def clips(self, video: VideoLike, *, stride: int = 1) -> np.ndarray:
        """A video file or uint8 frames (T, H, W, 3) -> uint8 clips (N, frames, R, R, 3): consecutive
        non-overlapping clips of the tokenizer's length (a remainder shorter than one clip is dropped), frames
        resized and cropped like the training clips. An array (N, frames, R, R, 3) passes through unchanged."""
        from .data.video import resize_crop

        if isinstance(video, np.ndarray) and video.ndim == 5:
            frames = video
            if frames.shape[1:] != (self.frames, self.resolution, self.resolution, 3) or frames.dtype != np.uint8:
                raise ValueError(f"expected uint8 clips (N, {self.frames}, {self.resolution}, {self.resolution}, 3) "
                                 f"but found {frames.dtype} {frames.shape}")
            return frames
        if isinstance(video, np.ndarray):
            frames = resize_crop(np.ascontiguousarray(video[::stride]), self.resolution)
        else:
            frames = read_video(video, resolution=self.resolution, stride=stride, min_frames=self.frames)
        n = len(frames) // self.frames
        if n == 0:
            raise ValueError(f"the video has {len(frames)} frames (stride {stride}) but one clip needs {self.frames}")
        return frames[: n * self.frames].reshape(n, self.frames, *frames.shape[1:])

    @torch.inference_mode()
    def encode(self, video: VideoLike, *, stride: int = 1, batch: int = 16) -> np.ndarray:
        """Token ids (N, num_tokens) int64, one row per clip of :meth:`clips`, with deterministic (argmax) SVQ: the
        encoding the pipeline scores and trains its generators on."""
        clips = self.clips(video, stride=stride)
        out = [self.model.encode(to_float_video(clips[i:i + batch]).to(self.device), deterministic=True).indices
               for i in range(0, len(clips), batch)]
        return torch.cat(out).long().cpu().numpy()

    @torch.inference_mode()
    def decode(self, ids: np.ndarray | torch.Tensor, *, batch: int = 16) -> np.ndarray:
        """Token ids (N, num_tokens) (or one row (num_tokens,)) -> uint8 clips (N, frames, R, R, 3), clamped."""
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[1] != self.num_tokens:
            raise ValueError(f"expected token ids (N, {self.num_tokens}) but found {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.codebook_size):
            raise ValueError(f"token ids must lie in [0, {self.codebook_size}) but found "
                             f"{int(ids.min())}..{int(ids.max())}")
        out = [to_uint8(self.model.decode_indices(ids[i:i + batch].to(self.device)))
               for i in range(0, len(ids), batch)]
        return np.concatenate(out)

    def reconstruct(self, video: VideoLike, *, stride: int = 1) -> np.ndarray:
        """Encode and decode a video: uint8 frames (N * frames, R, R, 3), its clips one after the other."""
        recon = self.decode(self.encode(video, stride=stride))
        return recon.reshape(-1, *recon.shape[2:])


def _find_tokenizer(generator_dir: Path, name: str) -> Path:
    """A generator's tokenizer by the layout of the pipeline: ``results/generator/<g>`` -> ``results/tokenizer/<t>``."""
    candidate = generator_dir.resolve().parent.parent / "tokenizer" / name
    if not (candidate / "model.safetensors").is_file():
        raise FileNotFoundError(f"the generator {generator_dir} was trained on tokenizer {name!r}, expected at "
                                f"{candidate}; pass its folder explicitly (tokenizer=... / --tokenizer DIR)")
    return candidate


@dataclass
class Generator:
    """A trained AR generator with the tokenizer whose tokens it models."""

    model: Any
    meta: dict[str, Any] = field(repr=False)
    tokenizer: Tokenizer

    @classmethod
    def load(cls, folder: str | os.PathLike, tokenizer: str | os.PathLike | Tokenizer | None = None,
             device: str = "cpu") -> Generator:
        """Load ``<folder>/model.safetensors``; ``tokenizer`` is a folder or :class:`Tokenizer` (default: the
        generator's own tokenizer in the pipeline layout, ``<folder>/../../tokenizer/<its tokenizer variant>``)."""
        from .models import load_generator

        folder = Path(folder)
        model, meta = load_generator(folder, device=device)
        if not isinstance(tokenizer, Tokenizer):
            tokenizer = Tokenizer.load(tokenizer or _find_tokenizer(folder, str(meta["tokenizer"])), device=device)
        cfg = meta["model_config"]
        if (cfg["vocab_size"], cfg["num_tokens"]) != (tokenizer.codebook_size, tokenizer.num_tokens):
            raise ValueError(f"the generator models {cfg['num_tokens']} tokens over {cfg['vocab_size']} codes but the "
                             f"tokenizer makes {tokenizer.num_tokens} over {tokenizer.codebook_size}")
        return cls(model, meta, tokenizer)

    @property
    def mode(self) -> str:
        """``class`` (class-conditional) or ``fp`` (frame prediction)."""
        return self.model.config.mode

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("token_meta", {}).get("class_names") or [])

    @property
    def context_frames(self) -> int:
        """Frames a frame-prediction generator is conditioned on (the rest of the clip is predicted)."""
        return int(self.meta.get("token_meta", {}).get("fp_context_frames", 0))

    def class_id(self, label: int | str) -> int:
        """A class id from an id or a class name of the training set."""
        if isinstance(label, str) and not label.lstrip("-").isdigit():
            if label not in self.class_names:
                raise ValueError(f"unknown class {label!r}; classes are {self.class_names}")
            return self.class_names.index(label)
        c, n = int(label), self.model.config.num_classes
        if not 0 <= c < n:
            raise ValueError(f"class id must lie in [0, {n}) but found {c}")
        return c

    def _generate(self, cond: torch.Tensor, *, seed: int, cfg_scale: float, temperature: float, top_k: int,
                  top_p: float) -> np.ndarray:
        from .generator.sampling import generate

        gen = torch.Generator(cond.device).manual_seed(seed)
        return generate(self.model, cond, cfg_scale=cfg_scale, temperature=temperature, top_k=top_k, top_p=top_p,
                        generator=gen).cpu().numpy()

    def sample_tokens(self, label: int | str, *, num_videos: int = 1, seed: int = 0, cfg_scale: float = 1.25,
                      temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
        """Token ids (num_videos, num_tokens) of class ``label`` (an id or a class name); the paper's CFG 1.25."""
        if self.mode != "class":
            raise ValueError("this is a frame-prediction generator: use continue_clip(video)")
        cond = torch.full((num_videos,), self.class_id(label), dtype=torch.long, device=self.tokenizer.device)
        return self._generate(cond, seed=seed, cfg_scale=cfg_scale, temperature=temperature, top_k=top_k,
                              top_p=top_p)

    def sample(self, label: int | str, *, num_videos: int = 1, seed: int = 0, **kwargs: Any) -> np.ndarray:
        """uint8 videos (num_videos, frames, R, R, 3) of class ``label``; keywords as :meth:`sample_tokens`."""
        return self.tokenizer.decode(self.sample_tokens(label, num_videos=num_videos, seed=seed, **kwargs))

    @torch.inference_mode()
    def continue_clip(self, video: VideoLike, *, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0, stride: int = 1) -> np.ndarray:
        """Frame prediction: for each clip of ``video`` (see :meth:`Tokenizer.clips`) keep its first
        ``context_frames`` frames, padded to the clip length by repeating the last (paper App. A.2), encode them
        (deterministic SVQ) and generate the clip: uint8 (N, frames, R, R, 3). No CFG (frame prediction has none)."""
        from .tokenizer.encode import pad_context

        if self.mode != "fp":
            raise ValueError("this is a class-conditional generator: use sample(class)")
        tok = self.tokenizer
        real = to_float_video(tok.clips(video, stride=stride)).to(tok.device)
        cond = tok.model.encode(pad_context(real, self.context_frames), deterministic=True).indices.long()
        ids = self._generate(cond, seed=seed, cfg_scale=1.0, temperature=temperature, top_k=top_k, top_p=top_p)
        return tok.decode(ids)

