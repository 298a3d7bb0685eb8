"""The parts of an ``%%asset`` cell's execution that need no runtime state: its result, where the project is, the
checks, which downstream partitions read a partition, and resetting a warm kernel between runs (``kernel.runtime``
uses them and re-exports the public ones)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notebook_orch.core.specs import AssetSpec
from notebook_orch.secrets import redact
from notebook_orch.store.records import CheckResult

RESET_ERROR = "__nbo_reset_error__"  # why this warm kernel could not be reset for the current run


@dataclass(frozen=True)
class AssetResult:
    """What one ``%%asset`` cell did."""

    asset: str
    partition: str
    status: str  # "materialized", "skipped", "source" (an external source's folder bound, nothing written)
    row_count: int | None = None
    columns: int | None = None
    duration_s: float = 0.0
    checks: tuple[CheckResult, ...] = ()
    data_changed: bool = True
    stale_downstream: tuple[str, ...] = ()
    run_id: str | None = None
    note: str | None = None  # e.g. "unsaved: differs from notebooks/x.ipynb": the kernel's declaration ran

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.asset}: skipped (not selected in this run)"
        if self.status == "source":
            return f"{self.asset}[{self.partition}]: {self.note}"
        shape = (f"{self.row_count} rows" if self.row_count is not None else "value") + (
            f" x {self.columns} columns" if self.columns else "")
        passed = sum(c.passed for c in self.checks)
        checks = f", checks {passed}/{len(self.checks)} passed" if self.checks else ""
        if not self.data_changed:
            after = "; data unchanged, nothing downstream went stale"
        elif self.stale_downstream:
            after = "; now stale downstream: " + ", ".join(self.stale_downstream)
        else:
            after = ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.asset}[{self.partition}]: {shape} in {self.duration_s:.2f} s{checks}{after}{note}"


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``pyproject.toml`` with ``[tool.notebook_orch]`` or ``.notebook_orch/``, walking up."""
    env = os.environ.get("NBO_PROJECT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".notebook_orch").is_dir():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.notebook_orch]" in pyproject.read_text(encoding="utf-8", errors="ignore"):
            return folder
    return here.parent if here.name == "notebooks" else here


def run_checks(spec: AssetSpec, value: Any, ns: Mapping[str, Any]) -> list[CheckResult]:
    out = []
    scope = dict(ns)
    scope[spec.name] = value
    for expr in spec.checks:
        try:
            ok = bool(eval(expr, scope))  # noqa: S307 - the user's own declared check
            out.append(CheckResult(expr, ok, None if ok else "evaluated to False"))
        except Exception as exc:  # a check that raises has failed; say how
            out.append(CheckResult(expr, False, redact(f"raised {type(exc).__name__}: {exc}")))
    return out


def downstream_readers(graph: Any, spec: AssetSpec, partition: str) -> list[tuple[str, list[str]]]:
    """Direct downstream assets and their partitions that read ``spec[partition]``."""
    import numpy as np

    from notebook_orch.core.mappings import readers_of, upstream_ranges
    from notebook_orch.project import utcnow

    now = utcnow()
    up_keys = spec.partitions.keys(now=now)
    q = up_keys.index(partition) if partition in up_keys else None
    if q is None:
        return []
    out = []
    for edge in graph.downstream_edges(spec.name):
        down = graph.spec(edge.downstream)
        down_keys = down.partitions.keys(now=now)
        lo, hi = upstream_ranges(down.partitions, spec.partitions, edge.dep.mapping, len(down_keys), len(up_keys))
        hits = readers_of(lo, hi, np.array([q], dtype=np.int64)).tolist()
        if hits:
            out.append((down.name, [down_keys[j] for j in hits]))
    return out


def reset_for_warm_run(shell: Any, *, cwd: str | None = None, record_errors: bool = False) -> None:
    """Before a run on a reused kernel: drop every name earlier runs created, so each run starts clean.

    Imported modules stay loaded (that is the point of a warm kernel); the namespace is what a fresh kernel has.
    ``record_errors``: the worker sent this without waiting for the reply (a round trip less per run), so a failure
    is kept in the namespace (``RESET_ERROR``) instead of raised, and the run's ``%%asset`` cells fail with it.
    """
    if not record_errors:
        _reset(shell, cwd)
        return
    try:
        _reset(shell, cwd)
    except Exception as exc:  # noqa: BLE001 - reported by the run's asset cells, which fail the run
        shell.user_ns[RESET_ERROR] = f"{type(exc).__name__}: {exc}"


def _reset(shell: Any, cwd: str | None) -> None:
    baseline = shell.user_ns.setdefault("__nbo_baseline__", None)
    if baseline is None:
        shell.user_ns["__nbo_baseline__"] = set(shell.user_ns) | {"__nbo_baseline__"}
    else:
        for name in [n for n in shell.user_ns if n not in baseline]:
            del shell.user_ns[name]
    runtime = shell.user_ns.get("__nbo_runtime__") or getattr(shell, "_nbo_runtime", None)
    if runtime is not None:
        runtime.active_partition = None
    if cwd:
        os.chdir(cwd)


__all__ = ["AssetResult", "RESET_ERROR", "downstream_readers", "find_project_root", "reset_for_warm_run", "run_checks"]
