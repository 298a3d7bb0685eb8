"""Executing one ``%%asset`` cell: the one engine behind the interactive magic and papermill runs.

For ``asset[partition]`` it loads every upstream value the dependency mappings name (from this session's cache
when the stored data version matches, else from value storage), binds them and ``partition_key`` /
``partition_date`` in the namespace, runs the body (user code is wrapped exactly once, here), runs the checks,
stages the value, and only when every check passed publishes it. Then:

* interactive (no run context in the namespace): the run is started and finalized here — materialization,
  SUCCESS and event in one transaction — and a one-line summary is returned;
* inside a papermill run (the executor injected ``nbo_run``): the materialization is appended to the run's
  manifest, and the executor commits every materialization of the run with its SUCCESS in one transaction when
  the notebook finishes.

The module imports no IPython: the magic hands in a callable that runs the body.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from notebook_orch.core.partitions import UNPARTITIONED_KEY, TimeWindowPartitions, Unpartitioned, partition_date
from notebook_orch.core.specs import AllPartitions, AssetSpec, Window, parse_declaration
from notebook_orch.errors import NotebookOrchError, PartitionError, RunFailed
from notebook_orch.store.records import CheckResult, ConsumedInput, NewMaterialization

RUN_CONTEXT = "nbo_run"  # the parameter papermill injects


@dataclass(frozen=True)
class AssetResult:
    """What one ``%%asset`` cell did."""

    asset: str
    partition: str
    status: str  # "materialized", "skipped"
    row_count: int | None = None
    columns: int | None = None
    duration_s: float = 0.0
    checks: tuple[CheckResult, ...] = ()
    data_changed: bool = True
    stale_downstream: tuple[str, ...] = ()
    run_id: str | None = None

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.asset}: skipped (not selected in this run)"
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
        return f"{self.asset}[{self.partition}]: {shape} in {self.duration_s:.2f} s{checks}{after}"


@dataclass
class _Upstream:
    value: Any
    consumed: list[ConsumedInput] = field(default_factory=list)


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


class AssetRuntime:
    """Per kernel: the project, its store and value storage, and values produced or loaded in this session."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = Path(root) if root else None
        self._project: Any = None
        self._values: Any = None
        self._graph_stamp: tuple | None = None
        # (asset, partition) -> (data_version, value): content-addressed, so always safe to reuse.
        self.cache: dict[tuple[str, str], tuple[str, Any]] = {}
        self.active_partition: str | None = None

    # -- the project as seen from the kernel -------------------------------------------------------------
    def project(self, root: str | None = None) -> Any:
        from notebook_orch.project import Project

        wanted = Path(root).resolve() if root else (self._root or find_project_root())
        if self._project is None or self._project.config.root != wanted:
            if self._project is not None:
                self._project.close()
            self._project = Project(wanted)
            self._values = None
            self._graph_stamp = None
        return self._project

    def values(self) -> Any:
        if self._values is None:
            from notebook_orch.storage import ValueStore

            self._values = ValueStore(self.project().config.data_dir)
        return self._values

    def graph(self) -> Any:
        """The project's graph, rediscovered only when a notebook file changed (a few stat calls)."""
        project = self.project()
        folder = project.config.notebooks
        stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.ipynb")
                             if ".ipynb_checkpoints" not in p.parts)) if folder.is_dir() else ()
        if stamp != self._graph_stamp:
            project.discover()
            self._graph_stamp = stamp
        return project.graph

    def close(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None

    # -- the cell ------------------------------------------------------------------------------------------
    def execute_cell(
        self,
        line: str,
        body: str,
        namespace: MutableMapping[str, Any],
        run_body: Callable[[], None],
        *,
        cell_index: int | None = None,
    ) -> AssetResult:
        declared = parse_declaration(line, cell=cell_index, source=body)  # DeclarationError -> UsageError upstream
        context = namespace.get(RUN_CONTEXT)
        if isinstance(context, Mapping):
            return self._execute_in_run(declared, body, namespace, run_body, dict(context))
        return self._execute_interactive(declared, body, namespace, run_body)

    def _execute_in_run(self, declared: AssetSpec, body: str, ns: MutableMapping[str, Any],
                        run_body: Callable[[], None], ctx: dict) -> AssetResult:
        partition = str(ctx["partition_key"])
        if declared.name not in ctx.get("assets", ()):
            return AssetResult(declared.name, partition, "skipped")
        self.project(ctx["project_root"])
        spec = self.graph().spec(declared.name)
        code_version = ctx.get("code_versions", {}).get(declared.name) or spec.code_version
        mat, result, _ = self._materialize(spec, partition, ns, run_body, run_id=ctx["run_id"],
                                           code_version=code_version, manifest=ctx.get("manifest"))
        _append_manifest(ctx["manifest"], {"materialization": _mat_to_json(mat)})
        return result

    def _execute_interactive(self, declared: AssetSpec, body: str, ns: MutableMapping[str, Any],
                             run_body: Callable[[], None]) -> AssetResult:
        from notebook_orch.core.codeversion import code_version as hash_code
        from notebook_orch.core.codeversion import normalize_source

        graph = self.graph()
        if declared.name in graph:
            spec = graph.spec(declared.name)
            if normalize_source(spec.source) != normalize_source(body) or spec.deps != declared.deps:
                # The cell was edited and not saved yet: version what runs, declare what the cell says.
                spec = _with(declared, notebook=spec.notebook, cell_index=spec.cell_index,
                             code_version=declared.code_version_override or hash_code(body, []))
        else:
            raise RunFailed(
                f"Asset {declared.name!r} is not declared in any saved notebook of the project at "
                f"{self.project().config.root}; save the notebook (under {self.project().config.notebooks}) and "
                "run the cell again."
            )
        partition = self._interactive_partition(spec, ns)
        store = self.project().store
        run = store.start_run(notebook=spec.notebook, targets=[(spec.name, partition)], kind="interactive")
        try:
            mat, result, before = self._materialize(spec, partition, ns, run_body, run_id=run.run_id,
                                                    code_version=spec.code_version, manifest=None)
        except RunFailed as exc:
            store.finalize_failure(run.run_id, error=str(exc), error_cell=spec.cell_index,
                                   checks=getattr(exc, "checks", ()))
            raise
        except BaseException as exc:
            store.finalize_failure(run.run_id, error=f"{type(exc).__name__}: {exc}", error_cell=spec.cell_index)
            raise
        store.finalize_success(run.run_id, [mat])
        changed = before is None or before != mat.data_version
        stale = _readers(graph, spec, partition) if changed else ()
        return _replace_result(result, data_changed=changed, stale_downstream=stale, run_id=run.run_id)

    def _interactive_partition(self, spec: AssetSpec, ns: Mapping[str, Any]) -> str:
        if isinstance(spec.partitions, Unpartitioned):
            return UNPARTITIONED_KEY
        key = self.active_partition or ns.get("partition_key")
        if not key:
            raise RunFailed(
                f"Asset {spec.name!r} is partitioned ({spec.partitions.describe()}); choose the partition first "
                f"with '%nbo partition KEY', e.g. %nbo partition {spec.partitions.keys(now=_now())[0]}"
            )
        return self._check_key(spec, str(key))

    def _check_key(self, spec: AssetSpec, key: str) -> str:
        try:
            spec.partitions.index_of(key, now=_now())
        except PartitionError as exc:
            raise RunFailed(f"Asset {spec.name!r}: {exc}", asset=spec.name, partition=key) from None
        return key

    # -- the shared middle: inputs, body, checks, value ---------------------------------------------------
    def _materialize(self, spec: AssetSpec, partition: str, ns: MutableMapping[str, Any],
                     run_body: Callable[[], None], *, run_id: str, code_version: str,
                     manifest: str | None) -> tuple[NewMaterialization, AssetResult, str | None]:
        self._check_key(spec, partition)
        started = time.perf_counter()
        consumed: list[ConsumedInput] = []
        for dep in spec.deps:
            upstream = self._load_dependency(spec, dep, partition, run_id)
            ns[dep.asset] = upstream.value
            consumed.extend(upstream.consumed)
        ns["partition_key"] = partition
        date = partition_date(spec.partitions, partition)
        if date is not None:
            ns["partition_date"] = date
        ns.pop(spec.name, None)  # a value left from an earlier run must not pass for this one's
        try:
            run_body()
        except Exception as exc:
            raise RunFailed(
                f"Asset {spec.name}[{partition}] failed in {spec.location}: {type(exc).__name__}: {exc}",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            ) from exc
        if spec.name not in ns:
            raise RunFailed(
                f"The cell of asset {spec.name!r} ({spec.location}) did not assign a variable named {spec.name!r}; "
                f"end the cell with '{spec.name} = ...'.",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
        value = ns[spec.name]
        values = self.values()
        staged = values.stage(spec.name, partition, value, io=spec.io, run_id=run_id)
        checks = _run_checks(spec, value, ns)
        failed = [c for c in checks if not c.passed]
        if failed:
            values.discard(staged)
            if manifest:
                _append_manifest(manifest, {"failed": spec.name, "checks": [asdict(c) for c in checks]})
            error = RunFailed(
                f"Asset {spec.name}[{partition}]: {len(failed)} of {len(checks)} check(s) failed: "
                + "; ".join(f"{c.expr!r} ({c.detail})" if c.detail else repr(c.expr) for c in failed)
                + ". Nothing was published.",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
            error.checks = tuple(checks)  # type: ignore[attr-defined]
            raise error
        before = self._previous_data_version(spec.name, partition)
        published = values.commit(staged)
        self.cache[(spec.name, partition)] = (published.data_version, value)
        meta = published.metadata
        duration = time.perf_counter() - started
        mat = NewMaterialization(
            asset=spec.name,
            partition=partition,
            code_version=code_version,
            data_version=published.data_version,
            deps_signature=spec.deps_signature,
            inputs=tuple(consumed),
            row_count=meta.row_count,
            schema=dict(meta.schema),
            null_rates=dict(meta.null_rates),
            checks=tuple(checks),
            duration_s=duration,
            storage_path=str(published.storage_path),
            io=published.handler,
        )
        result = AssetResult(spec.name, partition, "materialized", meta.row_count, len(meta.schema) or None,
                             duration, tuple(checks), run_id=run_id)
        return mat, result, before

    def _previous_data_version(self, asset: str, partition: str) -> str | None:
        rows = self.project().store.snapshot(keys=[(asset, partition)]).assets.get(asset)
        if rows is None or not rows.partitions or rows.materialization_id[0] is None:
            return None
        return rows.data_version[0]

    def _load_dependency(self, spec: AssetSpec, dep: Any, partition: str, run_id: str) -> _Upstream:
        from notebook_orch.core.mappings import upstream_ranges
        from notebook_orch.storage import combine_partitions

        graph = self.graph()
        up_spec = graph.spec(dep.asset)
        now = _now()
        down_keys = spec.partitions.keys(now=now)
        up_keys = up_spec.partitions.keys(now=now)
        lo, hi = upstream_ranges(spec.partitions, up_spec.partitions, dep.mapping, len(down_keys), len(up_keys))
        i = down_keys.index(partition) if not isinstance(spec.partitions, Unpartitioned) else 0
        wanted = [up_keys[q] for q in range(int(lo[i]), int(hi[i]))]
        store = self.project().store
        rows = store.snapshot(keys=[(dep.asset, k) for k in wanted]).assets.get(dep.asset)
        state = {}
        if rows is not None:
            for j, key in enumerate(rows.partitions):
                if rows.materialization_id[j] is not None:
                    state[key] = (rows.materialization_id[j], rows.data_version[j], rows.data_seq[j])
        missing = [k for k in wanted if k not in state]
        reads_existing = isinstance(dep.mapping, AllPartitions)
        if missing and not reads_existing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise RunFailed(
                f"Asset {spec.name}[{partition}] reads {dep.asset}[{shown}], which "
                f"{'is' if len(missing) == 1 else 'are'} not materialized; materialize "
                f"{'it' if len(missing) == 1 else 'them'} first (nbo materialize {dep.asset} ...), or include the "
                f"upstream in the selection (+{spec.name}).",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
        present = [k for k in wanted if k in state]
        need = [state[k][0] for k in present if self.cache.get((dep.asset, k), ("",))[0] != state[k][1]]
        records = store.materializations_by_id(need) if need else {}
        values: dict[str, Any] = {}
        consumed = []
        for key in present:
            mat_id, data_version, data_seq = state[key]
            cached = self.cache.get((dep.asset, key))
            if cached is not None and cached[0] == data_version:
                values[key] = cached[1]
            else:
                values[key] = self.values().load(records[mat_id].storage_path)
                self.cache[(dep.asset, key)] = (data_version, values[key])
            consumed.append(ConsumedInput(dep.asset, key, mat_id, data_version, data_seq))
        several = not isinstance(up_spec.partitions, Unpartitioned) and (
            isinstance(dep.mapping, (Window, AllPartitions))
            or (
                isinstance(spec.partitions, TimeWindowPartitions)
                and isinstance(up_spec.partitions, TimeWindowPartitions)
                and _coarser(spec.partitions.grain, up_spec.partitions.grain)
            )
        )
        value = combine_partitions(values) if several else next(iter(values.values()))
        return _Upstream(value, consumed)


_GRAIN_ORDER = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 3}


def _coarser(down: str, up: str) -> bool:
    return _GRAIN_ORDER[down] > _GRAIN_ORDER[up]


def _run_checks(spec: AssetSpec, value: Any, ns: Mapping[str, Any]) -> list[CheckResult]:
    out = []
    scope = dict(ns)
    scope[spec.name] = value
    for expr in spec.checks:
        try:
            ok = bool(eval(expr, scope))  # noqa: S307 - the user's own declared check
            out.append(CheckResult(expr, ok, None if ok else "evaluated to False"))
        except Exception as exc:  # a check that raises has failed; say how
            out.append(CheckResult(expr, False, f"raised {type(exc).__name__}: {exc}"))
    return out


def _readers(graph: Any, spec: AssetSpec, partition: str) -> tuple[str, ...]:
    """Direct downstream partitions that read ``spec[partition]`` (they just became stale)."""
    import numpy as np

    from notebook_orch.core.mappings import readers_of, upstream_ranges

    now = _now()
    up_keys = spec.partitions.keys(now=now)
    q = up_keys.index(partition) if partition in up_keys else None
    if q is None:
        return ()
    out = []
    for edge in graph.downstream_edges(spec.name):
        down = graph.spec(edge.downstream)
        down_keys = down.partitions.keys(now=now)
        lo, hi = upstream_ranges(down.partitions, spec.partitions, edge.dep.mapping, len(down_keys), len(up_keys))
        hits = readers_of(lo, hi, np.array([q], dtype=np.int64)).tolist()
        if hits:
            shown = ", ".join(down_keys[j] for j in hits[:3]) + (f" +{len(hits) - 3}" if len(hits) > 3 else "")
            out.append(f"{down.name}[{shown}]")
    return tuple(out)


def _append_manifest(path: str, entry: dict) -> None:
    # One JSON line per event, flushed and synced: the executor reads it after the kernel is gone.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _mat_to_json(mat: NewMaterialization) -> dict:
    return asdict(mat)


def materialization_from_json(data: Mapping[str, Any]) -> NewMaterialization:
    data = dict(data)
    data["inputs"] = tuple(ConsumedInput(**c) for c in data.get("inputs", ()))
    data["checks"] = tuple(CheckResult(**c) for c in data.get("checks", ()))
    return NewMaterialization(**data)


def read_manifest(path: str | os.PathLike[str]) -> tuple[list[NewMaterialization], list[CheckResult]]:
    """Materializations a run's kernel published, and the check results of a failed asset (if any)."""
    mats, checks = [], []
    p = Path(path)
    if not p.exists():
        return mats, checks
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if "materialization" in entry:
            mats.append(materialization_from_json(entry["materialization"]))
        elif "checks" in entry:
            checks.extend(CheckResult(**c) for c in entry["checks"])
    return mats, checks


def _with(spec: AssetSpec, **changes: Any) -> AssetSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def _replace_result(result: AssetResult, **changes: Any) -> AssetResult:
    from dataclasses import replace

    return replace(result, **changes)


def _now() -> Any:
    from notebook_orch.project import utcnow

    return utcnow()


def reset_for_warm_run(shell: Any, *, cwd: str | None = None) -> None:
    """Before a run on a reused kernel: drop every name earlier runs created, so each run starts clean.

    Imported modules stay loaded (that is the point of a warm kernel); the namespace is what a fresh kernel has.
    """
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


__all__ = [
    "AssetResult",
    "AssetRuntime",
    "NotebookOrchError",
    "RUN_CONTEXT",
    "find_project_root",
    "read_manifest",
    "reset_for_warm_run",
]
