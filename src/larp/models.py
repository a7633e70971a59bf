"""Trained models back from their weight files: every stage, the Python API and the official import load a
tokenizer or a generator here.

A weight file written by train_tokenizer / train_generator / import_official (``<dir>/model.safetensors``,
larp.io.save_weights) carries its model configuration (``model_config``) in its metadata, so the file alone rebuilds
the model; the folder or the file may be given.
"""

from __future__ import annotations

from pathlib import Path

from .io import load_weights


def _load(path: str | Path, model_cls: type, config_cls: type, device: str):
    file = Path(path) / "model.safetensors" if Path(path).is_dir() else Path(path)
    state, meta = load_weights(file, device=device)
    model = model_cls(config_cls.from_dict(meta["model_config"])).to(device)
    model.load_state_dict(state)
    model.eval()
    return model, meta


def load_tokenizer(path: str | Path, device: str = "cpu"):
    """The trained :class:`~larp.tokenizer.model.LARPTokenizer` in ``path`` (eval mode) and the file's metadata."""
    from .tokenizer.model import LARPTokenizer, TokenizerConfig

    return _load(path, LARPTokenizer, TokenizerConfig, device)


def load_generator(path: str | Path, device: str = "cpu"):
    """The trained :class:`~larp.generator.model.ARGenerator` in ``path`` (eval mode) and the file's metadata."""
    from .generator.model import ARGenerator, GeneratorConfig

    return _load(path, ARGenerator, GeneratorConfig, device)


__all__ = ["load_generator", "load_tokenizer"]
