"""Citations in code, configuration and docs point at files a clone of the repository has.

Two checks over every git-listed file (tracked, or untracked and not ignored) under the scanned paths:
- no mention of the off-repository notes this project was first written from, nor of their absolute location;
- every ``docs/<name>.md §N`` citation (and the short form ``facts §N`` for docs/official-code-facts.md) names
  an existing file with a heading for section N (``## N. ...``, or ``### N.M ...`` for a subsection), and a quoted
  subsection name after it (``§N "Name"``) occurs in that section.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("src/", "workflow/", "tests/", "benchmarks/", "docs/", "profiles/")
SCANNED_FILES = ("params.yaml", "Snakefile", "dvc.yaml", "README.md")
FACTS_DOC = "official-code-facts.md"

# Built from pieces so that this file does not match itself.
_MD = "." + "md"
FORBIDDEN = (
    "larp" + "-facts" + _MD,
    "larp" + "-paper" + _MD,
    "workflow" + "-notes" + _MD,
    "/work" + "/shared",
)

_SECTION = r"§\d+(?:\.\d+)*"
_SECTIONS = rf"(?:\s*(?:,|/|-|–|and)?\s*{_SECTION})+"  # "§4", "§4 and §6", "§5, §8.5, §9", "§1-§8", "§6/§8.7"
DOC_CITATION = re.compile(rf"docs/([\w.-]+\.md)({_SECTIONS})?")
SHORT_CITATION = re.compile(rf"\bfacts({_SECTIONS})")
QUOTED_NAME = re.compile(rf"§(\d+(?:\.\d+)*)\s*\(?\"([^\"\n]+)\"")


@cache
def scanned_files() -> tuple[str, ...]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = sorted({n for n in out.decode().split("\0") if n})
    return tuple(n for n in names if (n.startswith(SCANNED_DIRS) or n in SCANNED_FILES) and (ROOT / n).is_file())


@cache
def text_of(name: str) -> str | None:
    try:
        return (ROOT / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:  # binary file
        return None


@cache
def doc_sections(doc: str) -> dict[str, str] | None:
    """Section number -> its text (heading included) of docs/<doc>, for "## N." and "### N.M" headings."""
    path = ROOT / "docs" / doc
    if not path.is_file():
        return None
    sections: dict[str, list[str]] = {}
    top = sub = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"## (\d+)\. ", line):
            top, sub = m.group(1), None
            sections[top] = []
        elif m := re.match(r"### (\d+\.\d+) ", line):
            sub = m.group(1)
            if sub.split(".")[0] != top:
                raise AssertionError(f"docs/{doc}: subsection {sub} sits under section {top}")
            sections[sub] = []
        elif line.startswith("## "):
            top = sub = None
        for key in (top, sub):
            if key is not None:
                sections[key].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def citations(text: str):
    """(doc, [section numbers], start offset) for every docs/<doc> citation and every short ``facts §N``."""
    for m in DOC_CITATION.finditer(text):
        yield m.group(1), re.findall(r"§(\d+(?:\.\d+)*)", m.group(2) or ""), m.start()
    for m in SHORT_CITATION.finditer(text):
        yield FACTS_DOC, re.findall(r"§(\d+(?:\.\d+)*)", m.group(1)), m.start()


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def test_scanned_files_found():
    names = scanned_files()
    assert "params.yaml" in names and any(n.startswith("src/larp/") for n in names)
    assert f"docs/{FACTS_DOC}" in names and "tests/unit/test_docs_citations.py" in names


def test_no_off_repository_references():
    hits = []
    for name in scanned_files():
        text = text_of(name)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            hits += [f"{name}:{i}: {bad}" for bad in FORBIDDEN if bad in line]
    assert not hits, "files cite notes that are not in the repository (cite docs/ or the paper):\n" + "\n".join(hits)


def test_doc_citations_resolve():
    problems, n = [], 0
    for name in scanned_files():
        text = text_of(name)
        if text is None:
            continue
        for doc, numbers, at in citations(text):
            n += 1
            where = f"{name}:{line_of(text, at)}"
            sections = doc_sections(doc)
            if sections is None:
                problems.append(f"{where}: docs/{doc} does not exist")
                continue
            problems += [f"{where}: docs/{doc} has no section §{s}" for s in numbers if s not in sections]
    assert n > 0
    assert not problems, "\n".join(problems)


def test_quoted_subsection_names_resolve():
    """``§N "Name"`` after a citation of the facts doc: Name occurs in section N (case-insensitive)."""
    sections = doc_sections(FACTS_DOC)
    assert sections is not None
    problems = []
    for name in scanned_files():
        text = text_of(name)
        if text is None:
            continue
        for doc, _, at in citations(text):
            if doc != FACTS_DOC:
                continue
            m = QUOTED_NAME.match(text, text.index("§", at))
            if m is None:
                continue
            number, quoted = m.groups()
            body = sections.get(number, "")
            if quoted.lower() not in body.lower():
                problems.append(f"{name}:{line_of(text, at)}: \"{quoted}\" is not in docs/{FACTS_DOC} §{number}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", ["official-code-facts.md", "tooling-notes.md"])
def test_docs_sections_are_numbered_in_order(doc):
    sections = doc_sections(doc)
    assert sections is not None
    tops = [int(k) for k in sections if "." not in k]
    assert tops == list(range(1, len(tops) + 1))
