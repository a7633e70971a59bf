"""Atomic publication of stage outputs and self-describing weight files.

Every stage writes into a sibling temporary path (``.<name>.tmp-<uuid>``) on the same filesystem and renames it
into place only when everything succeeded (``os.replace`` is atomic on POSIX), so a crash or kill never leaves a
file or folder that a later stage, Snakemake or DVC would take as complete (style.md §9.4; the temp-then-rename
idea is stylegan-v's ``metric_utils`` cache). Temporaries match ``*.tmp-*`` which git and DVC ignore.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp-"


def _tmp_sibling(final: Path) -> Path:
    return final.parent / f".{final.name}{TMP_MARK}{uuid.uuid4().hex}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final`` in one rename.

    On an exception (or KeyboardInterrupt) the temporary folder is deleted and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists() or final.is_symlink():
        # A rename onto a non-empty folder fails; move the old one aside first so the swap stays short.
        old = _tmp_sibling(final)
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, final)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are refused (DVC and MLflow cannot read them)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    import yaml

    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(obj, sort_keys=False))


def save_weights(path: str | os.PathLike, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Save tensors as safetensors with ``meta`` (model + stage configuration) as JSON in the header.

    The file alone is enough to rebuild the model (style.md §9.4, nanoGPT's ``model_args``): read it back with
    :func:`load_weights`.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"larp": json.dumps(meta, default=_json_default, sort_keys=True)})


def load_weights(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`save_weights`: ``(state_dict, meta)``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; run the stage that produces it first")
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    if "larp" not in header:
        raise ValueError(f"{path} has no 'larp' metadata: it was not written by this pipeline (save_weights)")
    return load_file(str(path), device=device), json.loads(header["larp"])


def file_digest(path: str | os.PathLike, hasher: Any) -> str:
    """Feed a file to a hashlib object in 1 MiB chunks and return its hex digest (files may be GBs)."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
