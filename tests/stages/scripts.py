"""The stage scripts as the tests run them: with ``--reads``, their rule's parameter declaration (the
``**reads(...)`` of the rule of the same name in workflow/rules/*.smk), as Snakemake and DVC pass it. A stage that
reads a section its rule does not declare therefore fails its own test (larp.reads), and so does a successful run
that never looked up a declared section (declared for nothing, it would re-run the stage needlessly)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
# wildcards a declaration may name -> the script argument that carries the value
WILDCARD_ARGS = {"dataset": "--dataset", "official": "--name"}


def _call_text(text: str, start: int) -> str:
    """``reads(...)`` from ``start`` (its name) to the parenthesis that closes it."""
    depth = 0
    for i in range(text.index("(", start), len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i + 1]
    raise AssertionError(f"unclosed reads( at {start}")


def declaration(rule: str) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    """The positional sections (wildcards unfilled, ``datasets.{dataset}``) and the ``when`` keywords of the
    ``reads(...)`` of rule ``rule``, parsed as the Python call it is (literal arguments only)."""
    text = "\n".join(f.read_text() for f in sorted((ROOT / "workflow/rules").glob("*.smk")))
    for block in re.split(r"(?m)^(?=(?:local)?rule \w+:|checkpoint \w+:)", text):
        if re.match(rf"(?:local)?rule {rule}:", block):
            m = re.search(r"\*\*reads\(", block)
            assert m, f"rule {rule} declares no reads(...)"
            call = ast.parse(_call_text(block, m.start() + 2), mode="eval").body
            return ([ast.literal_eval(a) for a in call.args],
                    {k.arg: ast.literal_eval(k.value) for k in call.keywords})
    raise AssertionError(f"no rule {rule} in workflow/rules/")


def reads_argv(rule: str, argv: list[str], wildcards: dict[str, str] | None = None) -> list[str]:
    """``--reads`` and the declaration of ``rule`` with wildcards filled from ``argv`` (and ``wildcards``)."""
    values = {w: argv[argv.index(flag) + 1] for w, flag in WILDCARD_ARGS.items() if flag in argv}
    values.update(wildcards or {})
    declared, when = declaration(rule)
    extra = [n for w, by_value in when.items() for n in by_value.get(values[w], ())]
    return ["--reads", *(d.format(**values) for d in declared), *extra]


class StageScript:
    """A stage script module whose ``main(argv)`` adds the rule's ``--reads`` unless ``argv`` has one."""

    def __init__(self, name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "workflow/scripts" / f"{name}.py")
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.name = name

    def main(self, argv=None, wildcards: dict[str, str] | None = None) -> int:
        """Run the script; ``wildcards`` gives the values of rule wildcards no argument carries (``kind``)."""
        import larp.cli

        argv = list(argv or [])
        if "--reads" not in argv:
            argv += reads_argv(self.name, argv, wildcards)
        views = []

        def capture(*args, **kwargs):
            views.append(view := stage_view(*args, **kwargs))
            return view

        original, stage_view = larp.cli.stage_view, larp.cli.stage_view
        larp.cli.stage_view = capture
        try:
            rc = self.module.main(argv)
        finally:
            larp.cli.stage_view = original
        if rc == 0 and views:
            assert not views[0].unread(), (f"{self.name} declares {views[0].unread()} in its rule's reads(...) but "
                                           "never reads them: remove them from the declaration")
        return rc

    def __getattr__(self, attr):
        return getattr(self.module, attr)


def stage_script(name: str) -> StageScript:
    return StageScript(name)
