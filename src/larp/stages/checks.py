"""Checks that the paths a rule passes belong to the variant the params describe. The rules derive each path from
the variant's section; a stage run by hand (or a results tree rearranged) could pass another one, and the stage
would then score or train the wrong data under the variant's name. Each check names the mismatch and what to pass."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import StageError


def check_dataset(what: str, found: str, expected: str, key: str) -> None:
    """``found`` (the dataset a clip store, detector or token folder was made from) is ``expected`` (``key``)."""
    if found != expected:
        raise StageError(f"{what} was made from dataset {found!r} but {key} is {expected!r}; pass the one of "
                         f"{expected!r} (results/.../{expected})")


def check_tokens(meta: Mapping[str, Any], folder: str, tokenizer: str, dataset: str) -> None:
    """A token folder (encode_tokens' meta.json) holds the tokens of ``tokenizer`` on ``dataset`` (a meta.json
    written before the dataset was recorded is judged by its folder name)."""
    if meta.get("variant") not in (None, tokenizer):
        raise StageError(f"token folder {folder} holds the tokens of tokenizer {meta['variant']!r} but the generator "
                         f"trains on {tokenizer!r}; pass results/tokens/{tokenizer}/{dataset}")
    check_dataset(f"token folder {folder}", meta.get("dataset") or Path(folder).name, dataset, "the generator's dataset")
