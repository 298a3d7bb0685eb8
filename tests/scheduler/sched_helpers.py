"""A small project (a, b -> joined --auto) and the `nbo` command as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from _shared_helpers import wait_for
from nbformat.v4 import new_code_cell, new_notebook

WORKTREE = Path(__file__).resolve().parents[2]


def make_project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell("%load_ext notebook_orch\nimport os"),
        new_code_cell("%%asset a --partitions daily:2024-01-01 --schedule '0 6 * * *'\n"
                      "a = {'k': partition_key, 'v': os.environ.get('NBO_TEST_A', '1')}"),
        new_code_cell("%%asset b --partitions daily:2024-01-01\nb = {'k': partition_key}"),
        new_code_cell("%%asset joined --deps a,b --partitions daily:2024-01-01 --auto\n"
                      "joined = {'a': a, 'b': b}"),
    ]
    nbformat.write(nb, root / "notebooks" / "pipe.ipynb")
    return root


def env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(WORKTREE), "NBO_PROJECT": str(root), **extra}


def nbo(root: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, env=env(root, **extra))


def daemon(root: Path, *args: str, log: Path, **extra: str) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen([sys.executable, "-m", "notebook_orch.faces.cli", "-C", str(root), "scheduler",
                             "--interval", "0.2", *args], stdout=out, stderr=out, env=env(root, **extra))


def until(what: Callable[[], Any], timeout: float, step: float = 0.2) -> Any:
    """Poll ``what()`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError);
    the tests-wide ``wait_for`` with the scheduler tests' positional timeout."""
    return wait_for(what, timeout=timeout, every=step, what=str(what))
