"""The stage scripts as the stage tests run them: with ``--reads``, their rule's parameter declaration (the
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


def declared_reads(rule: str) -> list[str]:
    """The sections rule ``rule`` declares, wildcards unfilled (``datasets.{dataset}``)."""
    text = "\n".join(f.read_text() for f in sorted((ROOT / "workflow/rules").glob("*.smk")))
    for block in re.split(r"(?m)^(?=rule \w+:)", text):
        if block.startswith(f"rule {rule}:"):
            m = re.search(r"\*\*reads\(([^)]*)\)", block)
            assert m, f"rule {rule} declares no reads(...)"
            return list(ast.literal_eval(f"[{m.group(1)}]"))
    raise AssertionError(f"no rule {rule} in workflow/rules/")


def reads_argv(rule: str, argv: list[str]) -> list[str]:
    """``--reads`` and the declaration of ``rule`` with wildcards filled from ``argv``."""
    values = {w: argv[argv.index(flag) + 1] for w, flag in WILDCARD_ARGS.items() if flag in argv}
    return ["--reads", *(d.format(**values) for d in declared_reads(rule))]


class StageScript:
    """A stage script module whose ``main(argv)`` adds the rule's ``--reads`` unless ``argv`` has one."""

    def __init__(self, name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "workflow/scripts" / f"{name}.py")
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.name = name

    def main(self, argv=None) -> int:
        import larp.cli

        argv = list(argv or [])
        if "--reads" not in argv:
            argv += reads_argv(self.name, argv)
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
