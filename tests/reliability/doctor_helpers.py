"""Projects for doctor tests built without a kernel: a real SQLite store and real value folders, written through
the same lifecycle and ValueStore the runs use (so what doctor sees is what runs leave)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from notebook_orch.engine.lifecycle import RunLifecycle
from notebook_orch.storage import ValueStore
from notebook_orch.store.records import NewMaterialization


def make_project(root: Path, *, heartbeat_timeout: float = 120.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.notebook_orch]\nnotebooks = "notebooks"\nheartbeat_timeout = {heartbeat_timeout}\n', encoding="utf-8")
    (root / "notebooks").mkdir(exist_ok=True)
    return root


def open_project(root: Path) -> Any:
    from notebook_orch.project import Project

    return Project(root)


def published_run(project: Any, asset: str, partition: str, value: Any, *, finalize: bool = True,
                  end: str | None = None) -> tuple[RunLifecycle, Any]:
    """A run that publishes ``value``; ``finalize`` records it SUCCESS; ``end`` ('FAILED') records the run ended
    WITHOUT withdrawing (what a crash between the store write and the withdrawal leaves)."""
    life = RunLifecycle.start(project.store, project.config.data_dir, notebook="nb.ipynb",
                              targets=[(asset, partition)], kind="manual")
    published = ValueStore(project.config.data_dir).publish(asset, partition, value, run_id=life.run_id)
    if finalize:
        life.succeed([NewMaterialization(asset=asset, partition=partition, code_version="c1",
                                         data_version=published.data_version, storage_path=str(published.storage_path),
                                         io=published.handler)])
    elif end:
        project.store.finalize_failure(life.run_id, error="killed in a test", status=end)
    return life, published


def doctor_cli(root: Path, *args: str) -> tuple[int, str, str]:
    from notebook_orch.faces.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-C", str(root), "doctor", *args])
    return code, out.getvalue(), err.getvalue()


def codes(report: Any) -> list[str]:
    return sorted(f.code for f in report.findings)
