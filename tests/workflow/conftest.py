import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# A safety limit against a hung tool, not a speed requirement: a loaded 2-core machine took over 300 s for the tiny
# `dvc repro make_table1` (issue 14 case 12), so correctness tests must not fail on the machine's speed.
TOOL_TIMEOUT_S = 3 * 3600


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    return env


def run_tool(*args: str, cwd: Path = ROOT, check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a tool of the environment; ``env`` (default :func:`tool_env`) replaces the whole environment."""
    exe = shutil.which(args[0], path=str(BIN)) or args[0]
    proc = subprocess.run([exe, *args[1:]], cwd=cwd, env=tool_env() if env is None else env, capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
