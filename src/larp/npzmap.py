"""Memory-mapped arrays of an ``.npz`` written by ``np.savez`` (uncompressed): no copy into process memory.

``np.savez`` stores each array as a ``.npy`` member of a zip archive without compression (ZIP_STORED), so the
member's bytes lie contiguously in the file: its data can be mapped read-only with ``np.memmap`` at the offset found
from the zip local header and the ``.npy`` header. Processes that map the same file share the operating system's
page cache: a DDP job of 8 processes holds one copy of a token file (clean, reclaimable pages), not 8 private ones.
A compressed member (``np.savez_compressed``) cannot be mapped and is read into memory instead.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header (30 bytes), APPNOTE 4.3.7
_LOCAL_MAGIC = b"PK\x03\x04"


def load_npz(path: str | os.PathLike, keys: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{key: array}`` for ``keys`` of the archive at ``path``: read-only memory maps for stored members, plain
    arrays for compressed ones. Raises KeyError naming the archive for a missing key."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        names = set(zf.namelist())
        for key in keys:
            member = f"{key}.npy"
            if member not in names:
                raise KeyError(f"{path} has no array {key!r} (holds {sorted(n[:-4] for n in names)})")
            info = zf.getinfo(member)
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(member) as m:
                    out[key] = np.lib.format.read_array(m)
                continue
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            if fields[0] != _LOCAL_MAGIC:
                raise ValueError(f"{path}: bad zip local header for {member}")
            f.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])  # skip file name and extra
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            shape, fortran, dtype = (read_header(f) if read_header else
                                     np.lib.format._read_array_header(f, version))  # 3.0: no public reader
            if dtype.hasobject:
                raise ValueError(f"{path}: {key} holds Python objects, which are never loaded (pickles)")
            if int(np.prod(shape)) == 0:
                out[key] = np.zeros(shape, dtype)
                continue
            out[key] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape,
                                 order="F" if fortran else "C")
    return out


def release(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped ``array`` from this process's resident set (they stay in the page cache and
    are faulted back on the next access): call after a full scan so that it does not count against the process."""
    mm = getattr(array, "_mmap", None)  # np.memmap and its slices keep the mapping here
    if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def chunked(array: np.ndarray, fn, rows: int = 4096):
    """``[fn(array[i:i + rows]) for each chunk]``, releasing the mapped pages after each: scans a mapped array while
    holding at most one chunk of it."""
    out = []
    for i in range(0, len(array), rows):
        out.append(fn(array[i:i + rows]))
        release(array)
    return out


__all__ = ["chunked", "load_npz", "release"]
