"""Video listings with labels and splits: UCF-101 (and the synthetic set, which uses UCF-101's layout) and K600.

Each entry of params.yaml ``datasets`` is listed by :func:`list_videos` as a DataFrame with columns
``video_id, path, class_id, class_name, split``. Problems with the dataset as a whole (missing root, split list,
annotation file, video folder, unknown class) raise :class:`DatasetError` before any work; a single video listed
but absent on disk is left to the extractor, which records it as a failure ("missing file").

- UCF-101 (facts §7): ``<root>/ucfTrainTestlist/classInd.txt`` ("1 ApplyEyeMakeup", 1-based, alphabetical:
  class id = its number - 1), ``trainlist0{k}.txt`` ("Class/v_Class_g08_c01.avi 1") and ``testlist0{k}.txt``
  ("Class/v_Class_g01_c01.avi"), k = ``split``. The class comes from the folder of each listed path. The videos are
  ``<root>/<Class>/`` or, as the official download unpacks (UCF101.rar gives ``UCF-101/``, the split-list zip gives
  ``ucfTrainTestlist/``), ``<root>/UCF-101/<Class>/``. A wrong root gets an error naming the folder to use instead.
  Only ``kind``, ``root`` and ``split`` are read (the Kinetics keys may be left out).
- K600: annotation CSVs ``label,youtube_id,time_start,time_end,split`` in ``annotations`` (``train.csv`` for the
  train split, ``validate.csv`` for ``val``; ``<split>.csv`` is accepted too); clips
  ``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` under ``<root>/<split folder>/``, flat or in one folder per
  label (spaces in labels may be underscores), detected per file. Class ids = sorted unique train labels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from larp.errors import ParamsError
from ..errors import DatasetError

SPLITS = ("train", "test")
COLUMNS = ["video_id", "path", "class_id", "class_name", "split"]
K600_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
K600_KEYS = {  # the keys only a k600 entry needs (optional for ucf101 / synthetic), and what each one holds
    "annotations": "the folder holding the annotation CSVs (train.csv, validate.csv)",
    "train_split": "the name of the training video folder and annotation split (train)",
    "test_split": "the name of the evaluation video folder and annotation split (val)",
}
UCF_LISTS = "ucfTrainTestlist"  # what the official split-list zip unpacks to
UCF_VIDEOS = "UCF-101"  # what the official UCF101.rar unpacks to
_K600_FILES = {"train": "train.csv", "val": "validate.csv", "validate": "validate.csv"}


def dataset_entry(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``datasets.<name>`` entry of params; :class:`~larp.errors.ParamsError` naming the declared ones if absent."""
    datasets = params.get("datasets") or {}
    if name not in datasets:
        raise ParamsError(f"dataset {name!r} is not declared under datasets in params; declared: {sorted(datasets)}")
    return dict(datasets[name])


def check_root(ds: Mapping[str, Any], given: str | os.PathLike | None = None) -> Path:
    """The dataset root; ``given`` (the stage's ``--input``) must be the same folder as ``ds["root"]``."""
    root = Path(ds["root"])
    if given is not None and Path(given).resolve() != root.resolve():
        raise DatasetError(f"--input {given} is not the dataset root {root} declared in params (datasets.*.root); "
                           "pass the same folder to both")
    if not root.is_dir():
        what = (f"the folder holding {UCF_LISTS}/ and the videos, {UCF_VIDEOS}/<Class>/ (the official download as it "
                "unpacks) or <Class>/" if ds["kind"] != "k600"
                else "the Kinetics-600 folder holding one folder of .mp4 clips per split")
        hint = " (run make_synthetic first)" if ds["kind"] == "synthetic" else ""
        raise DatasetError(f"dataset root {root} does not exist; expected {what}{hint}")
    return root


def _lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; expected {what}")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]  # tolerates CRLF


# ---------------------------------------------------------------------------------------------------------------
# UCF-101 layout

def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def _ucf_lists(root: Path, kind: str) -> Path:
    """``<root>/ucfTrainTestlist``; if absent, a :class:`DatasetError` saying which folder ``root`` should be."""
    lists = root / UCF_LISTS
    if lists.is_dir():
        return lists
    fix = f"point datasets.*.root at {{}}, the folder holding {UCF_LISTS}/ (and {UCF_VIDEOS}/ or the <Class>/ folders)"
    if (root.parent / UCF_LISTS).is_dir():  # root is the video folder (UCF-101/) with the lists beside it
        hint = fix.format(root.parent)
    elif nested := [p for p in _subfolders(root) if (p / UCF_LISTS).is_dir()]:  # root is one level too high
        hint = fix.format(nested[0])
    elif kind == "synthetic":
        hint = "run make_synthetic first"
    elif (root / UCF_VIDEOS).is_dir():
        hint = (f"unpack the official split lists (UCF101TrainTestSplits-RecognitionTask.zip) into {root}, so that "
                f"{lists}/ sits beside {root / UCF_VIDEOS}/")
    else:
        hint = (f"point datasets.*.root at the folder where UCF101.rar and the split-list zip were unpacked (it holds "
                f"{UCF_VIDEOS}/ and {UCF_LISTS}/)")
    raise DatasetError(f"{lists} does not exist; expected UCF-101's official split lists there (classInd.txt, "
                       f"trainlist0k.txt, testlist0k.txt): {hint}")


def _ucf_videos(root: Path, classes: list[str], kind: str) -> Path:
    """The folder holding the ``<Class>/`` folders: ``root`` or ``root/UCF-101`` (the official download)."""
    for base in (root, root / UCF_VIDEOS):
        if any((base / c).is_dir() for c in classes):
            return base
    found = next((p for p in [*_subfolders(root), *(q for p in _subfolders(root) for q in _subfolders(p))]
                  if any((p / c).is_dir() for c in classes)), None)
    if found is not None:
        hint = f"they are in {found}: move (or link) that folder to {root / UCF_VIDEOS}"
    elif kind == "synthetic":
        hint = "run make_synthetic again"
    else:
        hint = f"unpack UCF101.rar into {root} (it creates {UCF_VIDEOS}/<Class>/v_*.avi)"
    raise DatasetError(f"none of the {len(classes)} class folders of {root / UCF_LISTS / 'classInd.txt'} "
                       f"({classes[0] if classes else '<Class>'}/ ...) is in {root} or {root / UCF_VIDEOS}; {hint}")


def _ucf_classes(root: Path, kind: str) -> list[str]:
    classes = []
    lists = _ucf_lists(root, kind)
    for i, line in enumerate(_lines(lists / "classInd.txt", "UCF-101's class list "
                                    "'1 ApplyEyeMakeup' ... (ucfTrainTestlist/classInd.txt)")):
        parts = line.split()
        if len(parts) != 2 or parts[0] != str(i + 1):
            raise DatasetError(f"{lists}/classInd.txt line {i + 1}: expected '{i + 1} <Class>' "
                               f"but found {line!r}")
        classes.append(parts[1])
    return classes


def _list_ucf(ds: Mapping[str, Any], split: str) -> pd.DataFrame:
    root = check_root(ds)
    classes = _ucf_classes(root, ds["kind"])
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    name = f"{'trainlist' if split == 'train' else 'testlist'}0{ds['split']}.txt"
    listing = root / UCF_LISTS / name
    rows = []
    for n, line in enumerate(_lines(listing, f"UCF-101's official {split} list for split {ds['split']}"), 1):
        parts = line.split()
        rel = parts[0].replace("\\", "/")
        folder = rel.split("/")[0]
        class_id = by_name.get(folder.lower())
        if "/" not in rel or class_id is None:
            raise DatasetError(f"{listing} line {n}: expected '<Class>/<video>' with a class of classInd.txt "
                               f"but found {line!r}")
        if len(parts) > 1 and parts[1] != str(class_id + 1):
            raise DatasetError(f"{listing} line {n}: label {parts[1]} disagrees with classInd.txt, which gives "
                               f"{folder} the label {class_id + 1}")
        rows.append((Path(rel).stem, rel, class_id, classes[class_id], split))
    videos = _ucf_videos(root, classes, ds["kind"]) if rows else root
    return pd.DataFrame([(v, str(videos / rel), *rest) for v, rel, *rest in rows], columns=COLUMNS)


# ---------------------------------------------------------------------------------------------------------------
# Kinetics-600

def _k600_key(ds: Mapping[str, Any], key: str) -> str:
    """``ds[key]`` of a k600 entry; a :class:`DatasetError` naming the key if it is missing or null."""
    if not ds.get(key):
        raise DatasetError(f"datasets.*.{key} is {'missing' if key not in ds else 'null'}; a k600 dataset needs "
                           f"{key}: {K600_KEYS[key]}")
    return str(ds[key])


def _k600_csv(ds: Mapping[str, Any], split_name: str) -> pd.DataFrame:
    folder = Path(_k600_key(ds, "annotations"))
    candidates = [folder / n for n in dict.fromkeys([_K600_FILES.get(split_name, ""), f"{split_name}.csv"]) if n]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DatasetError(f"no annotation file for K600 split {split_name!r}: expected one of "
                           f"{[str(p) for p in candidates]} with columns label,youtube_id,time_start,time_end,split")
    table = pd.read_csv(path, dtype={"label": str, "youtube_id": str})
    missing = [c for c in K600_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: expected columns {list(K600_COLUMNS)} but {missing} are missing "
                           f"(found {list(table.columns)})")
    return table


def _index_folder(folder: Path) -> tuple[set[str], dict[str, set[str]]]:
    """Files directly in ``folder`` and the files of each subfolder (one directory scan, not one stat per video)."""
    flat: set[str] = set()
    nested: dict[str, set[str]] = {}
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_dir():
                nested[entry.name] = {e.name for e in os.scandir(entry.path) if e.is_file()}
            elif entry.is_file():
                flat.add(entry.name)
    return flat, nested


def _list_k600(ds: Mapping[str, Any], split: str) -> pd.DataFrame:
    root = check_root(ds)
    classes = sorted(_k600_csv(ds, _k600_key(ds, "train_split"))["label"].astype(str).unique())
    class_ids = {c: i for i, c in enumerate(classes)}
    split_name = _k600_key(ds, "train_split" if split == "train" else "test_split")
    table = _k600_csv(ds, split_name)
    unknown = sorted(set(table["label"].astype(str)) - set(class_ids))
    if unknown:
        raise DatasetError(f"K600 {split_name} annotations name labels absent from the train annotations: "
                           f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    folder = root / split_name
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist; expected the K600 {split_name} clips "
                           "(<youtube_id>_<start:06d>_<end:06d>.mp4, flat or in one folder per label)")
    flat, nested = _index_folder(folder)
    rows = []
    for label, ytid, t0, t1 in table[list(K600_COLUMNS)].itertuples(index=False):
        label = str(label)
        name = f"{ytid}_{int(t0):06d}_{int(t1):06d}.mp4"
        path = folder / name  # listed even when absent: the extractor records "missing file"
        if name not in flat:
            for sub in (label, label.replace(" ", "_")):
                if name in nested.get(sub, ()):
                    path = folder / sub / name
                    break
        rows.append((Path(name).stem, str(path), class_ids[label], label, split))
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------------------------------------------------------

def class_names(ds: Mapping[str, Any]) -> list[str]:
    """All class names of a dataset, in class-id order."""
    if ds["kind"] == "k600":
        check_root(ds)
        return sorted(_k600_csv(ds, _k600_key(ds, "train_split"))["label"].astype(str).unique())
    return _ucf_classes(check_root(ds), ds["kind"])


def list_videos(ds: Mapping[str, Any], split: str) -> pd.DataFrame:
    """Videos of ``split`` ('train' | 'test') of a params.yaml dataset entry, with 0-based class ids."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} but found {split!r}")
    if ds["kind"] in ("ucf101", "synthetic"):
        return _list_ucf(ds, split)
    if ds["kind"] == "k600":
        return _list_k600(ds, split)
    raise DatasetError(f"unknown dataset kind {ds['kind']!r}; expected ucf101, synthetic or k600")
