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

Details that matter for correctness:

* the session cache holds a private copy of each value, and hands out copies: user code mutates DataFrames in
  place all the time, and the cache must keep matching the data version it is filed under (with pandas
  copy-on-write those copies share memory until someone writes; pickled objects are not cached at all);
* an upstream mapping that names no partition at all (``a[-1]`` of the first partition) binds ``None``;
  ``a[all]`` reads the partitions materialized so far, and fails when there are none;
* an interactive run takes heartbeats from a background thread while the cell runs, so a long cell is not
  reaped as dead by another process (``nbo status`` reaps runs whose heartbeat stopped);
* an edited cell that is not saved yet, or a new asset in no saved notebook yet, runs as written (see
  ``kernel.declared``), versioned with the saved notebook's helper cells, so saving it afterwards does not make
  the asset look code-changed; its summary line says so;
* error messages pass through ``secrets.redact`` before they are recorded or shown.

The module imports no IPython: the magic hands in a callable that runs the body.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from notebook_orch.core.partitions import UNPARTITIONED_KEY, TimeWindowPartitions, Unpartitioned, partition_date
from notebook_orch.core.specs import AllPartitions, AssetSpec, Window, parse_declaration
from notebook_orch.engine.heartbeats import Heartbeat
from notebook_orch.engine.manifest import append_manifest, materialization_to_json
from notebook_orch.errors import SYSTEM_EXIT_HINT, NotebookOrchError, PartitionError, RunFailed
from notebook_orch.secrets import redact
from notebook_orch.store.records import CANCELED, FAILED, CheckResult, ConsumedInput, NewMaterialization

RUN_CONTEXT = "nbo_run"  # the parameter papermill injects
# An input published earlier in the same run has no materialization id yet: the store resolves it at finalize.
SAME_RUN = 0
CACHE_ENTRIES = 512  # values kept in a kernel's session cache (a 7-day window of 3 assets needs 21)


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
    note: str | None = None  # e.g. "unsaved: differs from notebooks/x.ipynb": the kernel's declaration ran

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
        note = f" ({self.note})" if self.note else ""
        return f"{self.asset}[{self.partition}]: {shape} in {self.duration_s:.2f} s{checks}{after}{note}"


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
        # (asset, partition) -> (data_version, private copy): content-addressed, and nobody else holds the objects,
        # so always safe to reuse (see _remember / _hand_out).
        # Least recently used first; bounded so a warm kernel serving a long backfill does not keep every value.
        self.cache: OrderedDict[tuple[str, str], tuple[str, Any]] = OrderedDict()
        self._run_outputs: dict[str, Any] = {}
        self._new_assets: dict[str, AssetSpec] = {}  # run here, declared in no saved notebook yet
        self._kernel_declared: dict[str, AssetSpec] = {}  # cells run here whose declaration is not the saved one
        self.active_partition: str | None = None

    # -- the project as seen from the kernel -------------------------------------------------------------
    def project(self, root: str | None = None) -> Any:
        from notebook_orch.project import Project

        wanted = Path(root).resolve() if root else (self._root or self._found_root())
        if self._project is None or self._project.config.root != wanted:
            if self._project is not None:
                self._project.close()
            self._project = Project(wanted)
            self._values = None
            self._graph_stamp = None
        return self._project

    def _found_root(self) -> Path:
        """``find_project_root`` for the current folder and NBO_PROJECT, remembered until either changes."""
        key = (os.getcwd(), os.environ.get("NBO_PROJECT"))
        if getattr(self, "_root_key", None) != key:
            self._root_key, self._root_found = key, find_project_root()
        return self._root_found

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
            # Dropping the graph is enough: Project.graph rediscovers (project.discover() first would read every
            # notebook twice).
            project._graph = None
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
        graph = self.graph()
        spec = graph.spec(declared.name)
        code_version = ctx.get("code_versions", {}).get(declared.name) or spec.code_version
        mat, result, _ = self._materialize(graph, spec, partition, ns, run_body, run_id=ctx["run_id"],
                                           code_version=code_version, manifest=ctx.get("manifest"))
        append_manifest(ctx["manifest"], {"materialization": materialization_to_json(mat)})
        # Later cells of this run read this value although the store records it only when the run finishes.
        self._produced(ctx["run_id"])[(mat.asset, mat.partition)] = (mat.data_version, mat.storage_path)
        return result

    def _produced(self, run_id: str) -> dict[tuple[str, str], tuple[str, str | None]]:
        """Values published earlier in run ``run_id`` (only the current run is kept)."""
        if self._run_outputs.get("run_id") != run_id:
            self._run_outputs = {"run_id": run_id, "values": {}}
        return self._run_outputs["values"]

    def _execute_interactive(self, declared: AssetSpec, body: str, ns: MutableMapping[str, Any],
                             run_body: Callable[[], None]) -> AssetResult:
        from notebook_orch.kernel.declared import resolve_interactive_spec

        graph = self._with_new_assets(self.graph(), but=declared.name)
        chosen = resolve_interactive_spec(graph, declared, body, version_with_helpers=self._code_version_with_helpers,
                                          kernel_notebook=self._kernel_notebook(ns))
        spec = chosen.spec
        if chosen.note:
            self._kernel_declared[spec.name] = spec
        else:
            self._kernel_declared.pop(spec.name, None)
        partition = self._interactive_partition(spec, ns)
        project = self.project()
        store = project.store
        run = store.start_run(notebook=spec.notebook, targets=[(spec.name, partition)], kind="interactive")
        try:
            with Heartbeat(store, run.run_id, interval_s=project.config.heartbeat_timeout_s / 4):
                mat, result, before = self._materialize(graph, spec, partition, ns, run_body, run_id=run.run_id,
                                                        code_version=spec.code_version, manifest=None)
            store.finalize_success(run.run_id, [mat])
        except BaseException as exc:
            _record_failure(store, run.run_id, spec, exc)
            raise
        changed = before is None or before != mat.data_version
        # Nothing saved reads an asset the graph does not hold (a new one, or one whose saved declaration is broken).
        stale = self._now_stale_readers(graph, spec, partition) if changed and spec.name in graph else ()
        if spec.notebook is None:
            self._new_assets[spec.name] = spec
        return _replace_result(result, data_changed=changed, stale_downstream=stale, run_id=run.run_id,
                               note=chosen.note)

    def kernel_declarations(self) -> tuple[AssetSpec, ...]:
        """The declarations of cells run in this kernel that are new or differ from the saved ones (the kernel's
        view: ``%nbo partition`` accepts their keys, so a new partitioned asset can pick its first partition)."""
        return tuple(self._kernel_declared.values())

    def _with_new_assets(self, graph: Any, *, but: str) -> Any:
        """``graph`` plus the new assets this kernel ran that no saved notebook declares yet, so that a new cell can
        read the new cell above it before either is saved (background runs never see them). Once saved, the saved
        declaration wins."""
        extra = [s for n, s in self._new_assets.items() if n != but and n not in graph and n not in graph.invalid]
        if not extra:
            return graph
        from notebook_orch.core.graph import AssetGraph

        specs, known = list(graph.specs), set(graph.names)
        for spec in extra:  # in the order they first ran, so upstream first
            if all(d in known for d in spec.dep_names):
                specs.append(spec)
                known.add(spec.name)
        return AssetGraph(specs, invalid=graph.invalid, other_problems=graph.other_problems)

    def _kernel_notebook(self, ns: Mapping[str, Any]) -> str | None:
        """The notebook of this kernel relative to the project root, when JupyterLab said which (``__session__``,
        set by ipykernel from JPY_SESSION_NAME) and it is one of the project's."""
        session = ns.get("__session__")
        if not isinstance(session, str) or not session.endswith(".ipynb"):
            return None
        root = self.project().config.root
        try:
            return Path(session).resolve().relative_to(Path(root).resolve()).as_posix()
        except (OSError, ValueError):
            return None

    def _code_version_with_helpers(self, notebook: str | None, cell_index: int | None, body: str) -> str:
        """The code version of ``body`` with the helper cells of the saved ``notebook`` above ``cell_index`` (all
        of them when None: a new cell is usually written below the ones it uses)."""
        from notebook_orch.core.codeversion import code_version, select_helpers
        from notebook_orch.core.specs import split_asset_cell
        from notebook_orch.discovery import read_cells

        helpers: list[str] = []
        if notebook is None:
            return code_version(body, helpers)
        try:
            cells = read_cells(self.project().config.root / notebook)
            other = [(i, src) for i, (kind, src) in enumerate(cells)
                     if kind == "code" and split_asset_cell(src) is None]
            sources = dict(other)
            helpers = [sources[i] for i in select_helpers(body, other, before=cell_index)]
        except Exception:  # noqa: BLE001 - the notebook vanished or broke since discovery: version the body alone
            helpers = []
        return code_version(body, helpers)

    def _interactive_partition(self, spec: AssetSpec, ns: Mapping[str, Any]) -> str:
        if isinstance(spec.partitions, Unpartitioned):
            return UNPARTITIONED_KEY
        key = self.active_partition or ns.get("partition_key")
        if key == UNPARTITIONED_KEY:  # left in the namespace by an unpartitioned asset's cell: not a choice
            key = None
        if not key:
            keys = spec.partitions.keys(now=_now())
            example = f", e.g. %nbo partition {keys[0]}" if keys else ""
            raise RunFailed(
                f"Asset {spec.name!r} is partitioned ({spec.partitions.describe()}); choose the partition first "
                f"with '%nbo partition KEY'{example}",
                asset=spec.name,
            )
        return self._check_key(spec, str(key))

    def _check_key(self, spec: AssetSpec, key: str) -> str:
        try:
            spec.partitions.index_of(key, now=_now())
        except PartitionError as exc:
            raise RunFailed(f"Asset {spec.name!r}: {exc}", asset=spec.name, partition=key) from None
        return key

    # -- the shared middle: inputs, body, checks, value ---------------------------------------------------
    def _materialize(self, graph: Any, spec: AssetSpec, partition: str, ns: MutableMapping[str, Any],
                     run_body: Callable[[], None], *, run_id: str, code_version: str,
                     manifest: str | None) -> tuple[NewMaterialization, AssetResult, str | None]:
        self._check_key(spec, partition)
        started = time.perf_counter()
        consumed: list[ConsumedInput] = []
        for dep in spec.deps:
            upstream = self._load_dependency(graph, spec, dep, partition, run_id)
            ns[dep.asset] = upstream.value
            consumed.extend(upstream.consumed)
        ns["partition_key"] = partition
        date = partition_date(spec.partitions, partition)
        if date is not None:
            ns["partition_date"] = date
        else:  # a date left by an earlier time-partitioned cell would be a lie here
            ns.pop("partition_date", None)
        ns.pop(spec.name, None)  # a value left from an earlier run must not pass for this one's
        try:
            run_body()
        except (Exception, SystemExit) as exc:  # sys.exit() in a cell ends the cell, not the kernel: a failure
            detail = f"{exc.msg} (line {exc.lineno} of the cell)" if isinstance(exc, SyntaxError) else str(exc)
            if isinstance(exc, SystemExit):
                detail = f"{exc.code!r}{SYSTEM_EXIT_HINT}"
            error = RunFailed(
                redact(f"Asset {spec.name}[{partition}] failed in {spec.location}: {type(exc).__name__}: {detail}"),
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
            error.user_code = True  # type: ignore[attr-defined]  # the cause is the user's: show its traceback
            raise error from exc
        if spec.name not in ns:
            raise RunFailed(
                f"The cell of asset {spec.name!r} ({spec.location}) did not assign a variable named {spec.name!r}; "
                f"end the cell with '{spec.name} = ...'.",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
        value = ns[spec.name]
        values = self.values()
        staged = values.stage(spec.name, partition, value, io=spec.io, run_id=run_id)
        try:
            checks = _run_checks(spec, value, ns)
            failed = [c for c in checks if not c.passed]
            if failed:
                if manifest:
                    append_manifest(manifest, {"failed": spec.name, "checks": [asdict(c) for c in checks]})
                error = RunFailed(
                    f"Asset {spec.name}[{partition}]: {len(failed)} of {len(checks)} check(s) failed: "
                    + "; ".join(f"{c.expr!r} ({c.detail})" if c.detail else repr(c.expr) for c in failed)
                    + ". Nothing was published.",
                    asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
                )
                error.checks = tuple(checks)  # type: ignore[attr-defined]
                raise error
            before = self._previous_data_version(spec.name, partition)
        except BaseException:
            values.discard(staged)  # a failed check, an interrupt, a store read error: nothing half-done stays
            raise
        published = values.commit(staged)
        self._remember(spec.name, partition, published.data_version, value, handler=published.handler)
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
        latest = self.project().store.latest_materialization(asset, partition)  # one indexed lookup
        return None if latest is None else latest.data_version

    # -- the session cache ------------------------------------------------------------------------------------
    def _remember(self, asset: str, partition: str, data_version: str, value: Any, *, handler: str | None) -> None:
        """File a private copy of ``value`` under its data version.

        Pickled objects are not cached: they can be anything (a model, a connection), copying them may be costly
        or impossible, and loading them from storage gives a fresh object anyway. Nor is whatever fails to copy.
        """
        if handler == "pickle":
            self.cache.pop((asset, partition), None)
            return
        try:
            self.cache[(asset, partition)] = (data_version, _private_copy(value))
        except Exception:  # noqa: BLE001 - uncopyable (a lock, a connection): just do not cache it
            self.cache.pop((asset, partition), None)
            return
        self.cache.move_to_end((asset, partition))
        while len(self.cache) > CACHE_ENTRIES:
            self.cache.popitem(last=False)

    def _load_dependency(self, graph: Any, spec: AssetSpec, dep: Any, partition: str, run_id: str) -> _Upstream:
        from notebook_orch.core.mappings import upstream_ranges

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
        produced = self._produced(run_id)
        for key in wanted:
            if (dep.asset, key) in produced:  # this run's own output wins over what the store held before
                state[key] = (SAME_RUN, produced[(dep.asset, key)][0], SAME_RUN)
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
        if reads_existing and wanted and not present:
            raise RunFailed(
                f"Asset {spec.name}[{partition}] reads {dep.describe()}, but no partition of {dep.asset!r} is "
                f"materialized yet, so there is nothing to read; materialize some first (nbo materialize "
                f"{dep.asset} ...).",
                asset=spec.name, partition=partition, run_id=run_id, cell=spec.cell_index,
            )
        need = [state[k][0] for k in present
                if state[k][0] != SAME_RUN and self.cache.get((dep.asset, k), ("",))[0] != state[k][1]]
        records = store.materializations_by_id(need) if need else {}
        found: dict[str, Any] = {}
        shared: set[str] = set()  # keys whose object is the cache's own: hand out copies of those
        consumed = []
        for key in present:
            mat_id, data_version, data_seq = state[key]
            cached = self.cache.get((dep.asset, key))
            if cached is not None:
                self.cache.move_to_end((dep.asset, key))
            if cached is not None and cached[0] == data_version:
                found[key] = cached[1]
                shared.add(key)
            elif mat_id == SAME_RUN:
                found[key] = self.values().load(produced[(dep.asset, key)][1])
            else:
                record = records[mat_id]
                found[key] = self.values().load(record.storage_path)
                self._remember(dep.asset, key, data_version, found[key], handler=record.io)
            consumed.append(ConsumedInput(dep.asset, key, mat_id, data_version, data_seq))
        several = not isinstance(up_spec.partitions, Unpartitioned) and (
            isinstance(dep.mapping, (Window, AllPartitions))
            or (
                isinstance(spec.partitions, TimeWindowPartitions)
                and isinstance(up_spec.partitions, TimeWindowPartitions)
                and _coarser(spec.partitions.grain, up_spec.partitions.grain)
            )
        )
        return _Upstream(_hand_out(found, shared, several=several), consumed)

    def _now_stale_readers(self, graph: Any, spec: AssetSpec, partition: str) -> tuple[str, ...]:
        """Direct downstream partitions that read ``spec[partition]`` and were materialized: they just went stale
        (the ones never materialized were MISSING before and still are)."""
        readers = _readers(graph, spec, partition)
        if not readers:
            return ()
        snap = self.project().store.snapshot(keys=[(a, k) for a, keys in readers for k in keys])
        out = []
        for asset, keys in readers:
            rows = snap.assets.get(asset)
            built = set() if rows is None else {
                k for k, m in zip(rows.partitions, rows.materialization_id) if m is not None}
            hits = [k for k in keys if k in built]
            if hits:
                out.append(f"{asset}[{', '.join(hits[:3])}{f' +{len(hits) - 3}' if len(hits) > 3 else ''}]")
        return tuple(out)


def _record_failure(store: Any, run_id: str, spec: AssetSpec, exc: BaseException) -> None:
    """Finalize a failed interactive run; never let the bookkeeping hide the error the user must see."""
    error = redact(str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}".removesuffix(": "))
    try:
        store.finalize_failure(
            run_id, error=error, error_cell=spec.cell_index, checks=getattr(exc, "checks", ()),
            status=CANCELED if isinstance(exc, KeyboardInterrupt) else FAILED,
        )
    except Exception:  # noqa: BLE001 - e.g. already reaped: the original exception is what matters
        pass


def _private_copy(value: Any) -> Any:
    """A copy that shares nothing mutable with ``value``. With pandas copy-on-write (always on from pandas 3) a
    shallow copy is that — writes through either object copy first — and costs no memory; without it, a deep copy."""
    pd = sys.modules.get("pandas")  # a value can only be a DataFrame if pandas is already imported
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=not _copy_on_write(pd))
    return copy.deepcopy(value)


def _copy_on_write(pd: Any) -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


def _hand_out(found: dict[str, Any], shared: set[str], *, several: bool) -> Any:
    """What the cell gets for one dependency: never an object the session cache itself holds."""
    from notebook_orch.storage import combine_partitions

    if not several:
        if not found:  # e.g. a[-1] of the first partition: there is no upstream partition to read
            return None
        (key, value), = found.items()
        return _private_copy(value) if key in shared else value
    combined = combine_partitions(found)
    if isinstance(combined, dict):
        return {k: _private_copy(v) if k in shared else v for k, v in combined.items()}
    return combined  # pd.concat builds a new frame (or, under copy-on-write, one that copies before mutating)


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
            out.append(CheckResult(expr, False, redact(f"raised {type(exc).__name__}: {exc}")))
    return out


def _readers(graph: Any, spec: AssetSpec, partition: str) -> list[tuple[str, list[str]]]:
    """Direct downstream assets and their partitions that read ``spec[partition]``."""
    import numpy as np

    from notebook_orch.core.mappings import readers_of, upstream_ranges

    now = _now()
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
    "reset_for_warm_run",
]
