"""Atomic publication of stage outputs and self-describing weight files.

Every stage writes into a sibling temporary path (``.<name>.tmp-<host>-<pid>-<uuid>``) on the same filesystem and
renames it into place only when everything succeeded (``os.replace`` is atomic on POSIX), so a crash or kill never
leaves a file or folder that a later stage, Snakemake or DVC would take as complete (docs/tooling-notes.md §2; the
temp-then-rename idea is stylegan-v's ``metric_utils`` cache). Temporaries match ``*.tmp-*`` which git and DVC
ignore; those of a killed writer are removed by the next publication of the same path (:func:`remove_stale`).
A stage with several outputs publishes them together (:func:`atomic_outputs`): its primary output appears last.
Published files get the ordinary ``0666 & ~umask`` mode (safetensors alone would write 0600).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp-"
HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
# a temporary whose writer cannot be checked (another host, or the pre-pid name) is stale after this long
STALE_AFTER_S = 2 * 24 * 3600
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _tmp_sibling(final: Path) -> Path:
    return final.parent / f".{final.name}{TMP_MARK}{HOST}-{os.getpid()}-{uuid.uuid4().hex}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``final`` left by killed writers (this host: the writer's pid is gone; otherwise
    older than ``STALE_AFTER_S``); a live writer's temporary is left alone. Returns what was removed."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    prefix, removed = f".{final.name}{TMP_MARK}", []
    for entry in final.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_]+)-(\d+)-[0-9a-f]{32}", entry.name[len(prefix):])
        if m and m[1] == HOST:
            stale = not _alive(int(m[2]))
        else:
            try:
                stale = time.time() - entry.lstat().st_mtime > STALE_AFTER_S
            except FileNotFoundError:
                continue
        if stale:
            with contextlib.suppress(FileNotFoundError):
                _remove(entry)
            removed.append(entry)
    return removed


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
    remove_stale(final)
    tmp = _tmp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, final)


def _swap_in(tmp: Path, final: Path) -> None:
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
    remove_stale(final)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if tmp.is_file() and not tmp.is_symlink():
        os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, final)


class Outputs:
    """The temporaries of one stage's outputs (see :func:`atomic_outputs`)."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, Path]] = []  # (final, temporary), in the order named

    def _add(self, final: str | os.PathLike) -> tuple[Path, Path]:
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final)
        tmp = _tmp_sibling(final)
        self.items.append((final, tmp))
        return final, tmp

    def dir(self, final: str | os.PathLike) -> Path:
        """An empty temporary folder that becomes ``final``."""
        _, tmp = self._add(final)
        tmp.mkdir()
        return tmp

    def file(self, final: str | os.PathLike) -> Path:
        """A temporary file path (not created) that becomes ``final``."""
        return self._add(final)[1]


@contextlib.contextmanager
def atomic_outputs() -> Iterator[Outputs]:
    """Publish the several outputs of one stage together: ``outs.dir(final)`` / ``outs.file(final)`` give
    temporaries; when the block succeeded, every old output is removed first, then the temporaries are renamed into
    place in reverse order, so the FIRST one named (the stage's primary output, the one the next stage reads)
    appears LAST. A kill at any moment therefore leaves the primary output absent, or the old set untouched: neither
    Snakemake nor DVC nor a later stage takes a half-published stage as done (both re-run a stage whose declared
    output is missing). On an exception every temporary is deleted and the old outputs stay.
    """
    outs = Outputs()
    try:
        yield outs
    except BaseException:
        for _, tmp in outs.items:
            with contextlib.suppress(FileNotFoundError):
                _remove(tmp)
        raise
    for final, tmp in outs.items:
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"the stage did not write its output {final} (temporary {tmp})")
        if tmp.is_file() and not tmp.is_symlink():
            os.chmod(tmp, _FILE_MODE)
    for final, _ in outs.items:  # primary first: it is gone before anything new appears
        if final.exists() or final.is_symlink():
            old = _tmp_sibling(final)
            os.replace(final, old)
            _remove(old)
    for final, tmp in reversed(outs.items):
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


def pick_named(paths: str | os.PathLike | Sequence[str | os.PathLike], names: Sequence[str], *, suffix: str = "",
               stage: str) -> list[Path]:
    """For each of ``names``, in order, the path ``<name><suffix>`` among ``paths`` (the exact files or folders a
    rule passes, e.g. ``results/eval/tokenizer/larp.json``), or inside ``paths`` when it is one folder (a results
    tree given by hand). A name with no path names the ``stage`` job that makes it."""
    if isinstance(paths, (str, os.PathLike)):
        folder = Path(paths)
        found = {n: folder / f"{n}{suffix}" for n in names}
        found = {n: p for n, p in found.items() if p.exists()}
        where = f"in {folder}"
    else:
        found = {Path(p).name.removesuffix(suffix): Path(p) for p in paths if Path(p).name.endswith(suffix)}
        where = f"among the {len(paths)} paths given"
    missing = [n for n in names if n not in found]
    if missing:
        folders = [] if isinstance(paths, (str, os.PathLike)) else [p for p in paths if Path(p).is_dir()
                                                                    and Path(p).name not in names]
        hint = (f" ({', '.join(map(str, folders))} is a folder: pass the paths in it, e.g. "
                f"{Path(folders[0]) / ('*' + suffix)})" if folders and suffix else "")
        raise FileNotFoundError(f"no {', '.join(f'{n}{suffix}' for n in missing)} {where}{hint}; run "
                                f"{', '.join(f'{stage}@{n}' for n in missing)} first")
    return [found[n] for n in names]


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    import yaml

    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(obj, sort_keys=False))


DIGEST_KEY = "larp_sha256"


def weights_digest(tensors: Mapping[str, Any], meta_json: str) -> str:
    """SHA-256 of the embedded metadata and every tensor (name, dtype, shape, bytes), in name order: recorded in the
    file at publish time and checked at load, so flipped or truncated bytes anywhere in the data are caught."""
    import torch

    h = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def save_weights(path: str | os.PathLike, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Save tensors as safetensors with ``meta`` (model + stage configuration) as JSON in the header, and the
    content digest (:func:`weights_digest`).

    The file alone is enough to rebuild the model (as nanoGPT checkpoints carry ``model_args``): read it back with
    :func:`load_weights`.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    meta_json = json.dumps(meta, default=_json_default, sort_keys=True)
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"larp": meta_json, DIGEST_KEY: weights_digest(tensors, meta_json)})


def _corrupt(path: Path, what: str) -> Exception:
    from .errors import StageError

    return StageError(f"{path} {what}; the file is damaged or was not written by this pipeline. Delete it (or its "
                      "folder) and re-run the stage that publishes it: Snakemake and DVC both re-run a stage whose "
                      "output is missing")


def load_weights(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`save_weights`: ``(state_dict, meta)``, after checking the content digest.

    A truncated, garbled or altered file stops with :class:`~larp.errors.StageError` naming it (exit code 2).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; run the stage that produces it first")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises several types for a bad header, size or dtype
        raise _corrupt(path, f"is not a readable safetensors file ({type(exc).__name__}: "
                             f"{str(exc).strip()[:200]})") from None
    if "larp" not in header:
        raise _corrupt(path, "has no 'larp' metadata (save_weights writes it)")
    try:
        meta = json.loads(header["larp"])
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"has unreadable 'larp' metadata ({exc})") from None
    if DIGEST_KEY not in header:
        import sys

        print(f"warning: {path} carries no content digest (written before digests were recorded); it cannot be "
              "checked. Re-run its stage to record one.", file=sys.stderr)
    elif weights_digest(state, header["larp"]) != header[DIGEST_KEY]:
        raise _corrupt(path, f"does not match the content digest recorded when it was published ({DIGEST_KEY})")
    if device != "cpu":
        state = {k: v.to(device) for k, v in state.items()}
    return state, meta


def file_digest(path: str | os.PathLike, hasher: Any) -> str:
    """Feed a file to a hashlib object in 1 MiB chunks and return its hex digest (files may be GBs)."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
