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

import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from notebook_orch.core.partitions import UNPARTITIONED_KEY, Unpartitioned, partition_date
from notebook_orch.core.reads import UpstreamRead
from notebook_orch.core.specs import AssetSpec, parse_declaration
from notebook_orch.engine.manifest import append_manifest, materialization_to_json
from notebook_orch.errors import SYSTEM_EXIT_HINT, NotebookOrchError, PartitionError, RunFailed
from notebook_orch.kernel.cache import SessionCache
from notebook_orch.kernel.cell_support import (
    RESET_ERROR,
    AssetResult,
    downstream_readers,
    find_project_root,
    reset_for_warm_run,
    run_checks,
)
from notebook_orch.kernel.inputs import StoredInput
from notebook_orch.secrets import redact
from notebook_orch.store.records import CANCELED, FAILED, ConsumedInput, NewMaterialization

RUN_CONTEXT = "nbo_run"  # the parameter papermill injects



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
        self.cache = SessionCache()
        self._run_outputs: dict[str, Any] = {}
        self._new_assets: dict[str, AssetSpec] = {}  # run here, declared in no saved notebook yet
        self._kernel_declared: dict[str, AssetSpec] = {}  # cells run here whose declaration is not the saved one
        self.active_partition: str | None = None
        # Asset -> where it is saved, for assets whose cell this kernel last ran as edited (differing from the file)
        self.unsaved: dict[str, str] = {}
        self._code_sources: dict[str, str] = {}  # code version -> normalized source, of versions computed here
        # Where "waiting for pool X (n ahead)" goes while an interactive cell waits for a pool slot: the magic
        # installs one that updates a line in the cell's output; without one it is printed.
        self.notify_wait: Callable[[str | None], None] | None = None

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

    def declared_only_here(self, name: str) -> bool:
        """True when this kernel ran (or tried to run) ``name``'s cell but the saved notebooks do not declare it: a
        new cell, or a notebook not saved yet. ``%nbo status`` and the CLI read the saved notebooks only."""
        return (name in self._new_assets or name in self._kernel_declared) and name not in self.graph()

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
        if declared.source_path is not None:
            return self._bind_source(declared, namespace)
        context = namespace.get(RUN_CONTEXT)
        if isinstance(context, Mapping):
            return self._execute_in_run(declared, body, namespace, run_body, dict(context))
        return self._execute_interactive(declared, body, namespace, run_body)

    def _bind_source(self, spec: AssetSpec, ns: MutableMapping[str, Any]) -> AssetResult:
        """An external source's cell writes nothing: it binds the active partition's folder, as its readers get it
        (the scheduler records the partition when the marker appears)."""
        from notebook_orch.core.sources import source_folder

        partition = self._interactive_partition(spec, ns)
        folder = Path(source_folder(spec, partition, root=self._found_root()))
        ns[spec.name] = folder
        state = "complete" if (folder / spec.marker).is_file() else f"not complete: no {spec.marker} yet"
        return AssetResult(spec.name, partition, "source", note=f"external source at {folder}, {state}")

    def _execute_in_run(self, declared: AssetSpec, body: str, ns: MutableMapping[str, Any],
                        run_body: Callable[[], None], ctx: dict) -> AssetResult:
        """In a run the worker handed over everything in the run folder's context file: the code version, what
        each dependency reads and where those values are. The kernel opens neither the project nor the store."""
        partition = str(ctx["partition_key"])
        if ns.get(RESET_ERROR):
            raise RunFailed(f"The warm kernel could not be prepared for run {ctx.get('run_id')} "
                            f"({ns[RESET_ERROR]}); nothing of this run executed in a clean namespace. Run it again.",
                            asset=declared.name, partition=partition, run_id=ctx.get("run_id"))
        if declared.name not in ctx.get("assets", ()):
            return AssetResult(declared.name, partition, "skipped")
        context = self._run_context(ctx)
        entry = context["assets"].get(declared.name)
        if entry is None:
            raise RunFailed(f"Run {ctx['run_id']} selected asset {declared.name!r} but its context file names only "
                            f"{sorted(context['assets'])}; the run was started without the asset's graph slice "
                            "(start runs with nbo materialize / Project.submit).",
                            asset=declared.name, partition=partition, run_id=ctx["run_id"])
        spec = replace(declared, notebook=context["notebook"], cell_index=entry["cell"],
                     code_version=entry["code_version"], code_source=entry.get("code_source") or "")
        inputs = [(UpstreamRead.from_json(r), {k: StoredInput.from_json(v) for k, v in r["found"].items()})
                  for r in entry["reads"]]
        mat, result, _ = self._materialize(spec, partition, ns, run_body, run_id=ctx["run_id"],
                                           code_version=spec.code_version, manifest=ctx.get("manifest"),
                                           inputs=inputs)
        append_manifest(ctx["manifest"], {"materialization": materialization_to_json(mat)})
        # Later cells of this run read this value although the store records it only when the run finishes.
        self._produced(ctx["run_id"])[(mat.asset, mat.partition)] = (mat.data_version, mat.storage_path)
        return result

    def _run_context(self, ctx: Mapping[str, Any]) -> dict:
        """The run's context file, read once per run."""
        import json

        cached = getattr(self, "_context", None)
        if cached is None or cached.get("run_id") != ctx["run_id"]:
            path = ctx.get("context")
            if not path:
                raise RunFailed("This run's parameters name no context file (nbo_run['context']); runs are started "
                                "by notebook_orch (nbo materialize), which writes it.", run_id=ctx.get("run_id"))
            cached = self._context = json.loads(Path(path).read_text(encoding="utf-8"))
            if self._values is None or str(self._values.root) != str(cached["data_dir"]):
                # One value store per data folder for the kernel's life: a new one reads the installed packages'
                # entry points again (~20 ms, every run of a warm kernel).
                from notebook_orch.storage import ValueStore

                self._values = ValueStore(cached["data_dir"])
        return cached

    def _produced(self, run_id: str) -> dict[tuple[str, str], tuple[str, str | None]]:
        """Values published earlier in run ``run_id`` (only the current run is kept)."""
        if self._run_outputs.get("run_id") != run_id:
            self._run_outputs = {"run_id": run_id, "values": {}}
        return self._run_outputs["values"]

    def _execute_interactive(self, declared: AssetSpec, body: str, ns: MutableMapping[str, Any],
                             run_body: Callable[[], None]) -> AssetResult:
        from notebook_orch.kernel.declared import resolve_interactive_spec

        graph = self._with_new_assets(self.graph(), but=declared.name)
        def version_with_helpers(notebook: str | None, cell_index: int | None, source: str) -> str:
            return self._code_version_with_helpers(notebook, cell_index, source, checks=declared.checks)

        chosen = resolve_interactive_spec(graph, declared, body, version_with_helpers=version_with_helpers,
                                          kernel_notebook=self._kernel_notebook(ns))
        spec = chosen.spec
        if not spec.code_source:  # a kernel declaration: the source of the version it was given
            saved = graph.spec(spec.name) if spec.name in graph else None
            source = saved.code_source if saved is not None and saved.code_version == spec.code_version else (
                self._code_sources.get(spec.code_version, ""))
            spec = replace(spec, code_source=source)
        if chosen.note:
            self._kernel_declared[spec.name] = spec
        else:
            self._kernel_declared.pop(spec.name, None)
        if chosen.note and spec.notebook is not None:  # %nbo status/stale read the saved file: they say so
            self.unsaved[spec.name] = spec.location
        else:
            self.unsaved.pop(spec.name, None)
        partition = self._interactive_partition(spec, ns)
        project = self.project()
        from notebook_orch.engine.lifecycle import RunLifecycle

        pools = self._pools_of(project, graph, spec)
        life = RunLifecycle.start(project.store, project.config.data_dir, notebook=spec.notebook,
                                  targets=[(spec.name, partition)], kind="interactive", pools=pools or None)
        try:
            with life.heartbeats(project.config.heartbeat_timeout_s / 4):
                if pools:  # at once unless the run started WAITING; Ctrl-C while waiting cancels it (below)
                    self._wait_for_pool(life, pools)
                inputs = self._interactive_inputs(graph, spec, partition)
                mat, result, before = self._materialize(spec, partition, ns, run_body, run_id=life.run_id,
                                                        code_version=spec.code_version, manifest=None, inputs=inputs)
            life.succeed([mat])
        except BaseException as exc:
            _record_failure(life, spec, exc)
            raise
        run = life.run
        changed = before is None or before != mat.data_version
        # Nothing saved reads an asset the graph does not hold (a new one, or one whose saved declaration is broken).
        stale = self._now_stale_readers(graph, spec, partition) if changed and spec.name in graph else ()
        if spec.notebook is None:
            self._new_assets[spec.name] = spec
        return replace(result, data_changed=changed, stale_downstream=stale, run_id=run.run_id,
                               note=chosen.note)

    @staticmethod
    def _pools_of(project: Any, graph: Any, spec: AssetSpec) -> dict[str, int]:
        """The pool slots an interactive run of ``spec`` takes, like a background run of it would (core/pools)."""
        from notebook_orch.core.pools import run_pools

        concurrency = project.config.concurrency
        if concurrency.empty:
            return {}
        return run_pools(concurrency, [spec.name], {spec.name: spec.pools})

    def _wait_for_pool(self, life: Any, pools: Mapping[str, int]) -> None:
        """Wait (the kernel is busy, as with any long cell) until the run has its slots, saying what it waits for."""
        from notebook_orch.core.pools import pool_key_label

        if life.run.status == "RUNNING":
            return
        notify = self.notify_wait or (lambda text: print(text, flush=True) if text else None)
        t0 = time.monotonic()

        def waiting(blocked: list[dict[str, Any]]) -> None:
            where = ", ".join(f"{pool_key_label(b['pool'])} ({b['ahead']} ahead, {b['in_use']} of {b['limit']} "
                              "in use)" for b in blocked)
            notify(f"{life.run.assets[0]}: waiting for {where or 'a pool slot'}; run {life.run_id} is WAITING "
                   "(interrupt the kernel to cancel it)")

        life.wait_for_slots(pools, poll_s=0.5, on_wait=waiting)
        notify(f"{life.run.assets[0]}: got its pool slot after {time.monotonic() - t0:.1f} s")

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

    def _code_version_with_helpers(self, notebook: str | None, cell_index: int | None, body: str, *,
                                   checks: tuple[str, ...] = ()) -> str:
        """The code version of ``body`` with the helper cells of the saved ``notebook`` above ``cell_index`` (all
        of them when None: a new cell is usually written below the ones it uses) that it or its ``checks`` read,
        as discovery chooses them."""
        from notebook_orch.core.codeversion import code_source, code_version, select_helpers
        from notebook_orch.core.specs import split_asset_cell
        from notebook_orch.discovery import helper_query, read_cells

        helpers: list[str] = []
        if notebook is None:
            version = code_version(body, helpers)
            self._code_sources[version] = code_source(body, helpers)
            return version
        try:
            cells = read_cells(self.project().config.root / notebook)
            other = [(i, src) for i, (kind, src) in enumerate(cells)
                     if kind == "code" and split_asset_cell(src) is None]
            sources = dict(other)
            helpers = [sources[i] for i in select_helpers(helper_query(body, checks), other, before=cell_index)]
        except Exception:  # noqa: BLE001 - the notebook vanished or broke since discovery: version the body alone
            helpers = []
        version = code_version(body, helpers)
        # What this version stands for, kept with its first materialization (nbo stale's diffs)
        self._code_sources[version] = code_source(body, helpers)
        return version

    def _interactive_partition(self, spec: AssetSpec, ns: Mapping[str, Any]) -> str:
        if isinstance(spec.partitions, Unpartitioned):
            return UNPARTITIONED_KEY
        key = self.active_partition or ns.get("partition_key")
        if key == UNPARTITIONED_KEY:  # left in the namespace by an unpartitioned asset's cell: not a choice
            key = None
        if not key:
            keys = spec.partitions.keys(now=_now())
            example = f", e.g. %nbo partition {keys[0]}" if keys else ""
            # Nothing ran: a missing choice, shown by the magic as a usage error, not as a failed run
            raise PartitionError(
                f"Asset {spec.name!r} is partitioned ({spec.partitions.describe()}); choose the partition first "
                f"with '%nbo partition KEY'{example}"
            )
        return self._check_key(spec, str(key))

    def _check_key(self, spec: AssetSpec, key: str) -> str:
        try:
            spec.partitions.index_of(key, now=_now())
        except PartitionError as exc:
            raise PartitionError(f"Asset {spec.name!r}: {exc}") from None
        return key

    # -- the shared middle: inputs, body, checks, value ---------------------------------------------------
    def _interactive_inputs(self, graph: Any, spec: AssetSpec, partition: str
                            ) -> list[tuple[UpstreamRead, dict[str, StoredInput]]]:
        from notebook_orch.core.reads import upstream_reads
        from notebook_orch.engine.inputs import resolve_inputs

        self._check_key(spec, partition)
        reads = upstream_reads(spec, {d.asset: graph.spec(d.asset) for d in spec.deps}, partition, now=_now())
        return list(zip(reads, resolve_inputs(self.project().store, reads, with_paths=False)))

    def _materialize(self, spec: AssetSpec, partition: str, ns: MutableMapping[str, Any],
                     run_body: Callable[[], None], *, run_id: str, code_version: str, manifest: str | None,
                     inputs: list[tuple[UpstreamRead, dict[str, StoredInput]]],
                     ) -> tuple[NewMaterialization, AssetResult, str | None]:
        from notebook_orch.kernel.inputs import absent_hint, load_upstream

        self._check_key(spec, partition)
        started = time.perf_counter()
        consumed: list[ConsumedInput] = []
        produced = self._produced(run_id)
        absent: list[tuple[str, tuple[str, ...]]] = []
        for read, stored in inputs:
            upstream = load_upstream(read, stored, asset=spec.name, partition=partition, run_id=run_id,
                                     cell=spec.cell_index, produced=produced, cache=self.cache,
                                     load=self.values().load, paths_for=self._paths_for)
            ns[read.asset] = upstream.value
            consumed.extend(upstream.consumed)
            if upstream.absent:
                absent.append((read.asset, upstream.absent))
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
                redact(f"Asset {spec.name}[{partition}] failed in {spec.location}: {type(exc).__name__}: {detail}"
                       + absent_hint(spec.trigger, absent)),
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
            checks = run_checks(spec, value, ns)
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
            # Only an interactive cell says whether its data changed; a run's kernel does not open the store.
            before = self._previous_data_version(spec.name, partition) if manifest is None else None
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
            # The source this version stands for, when the spec's is the one run (a plan may pin another version)
            code_source=(spec.code_source or None) if code_version == spec.code_version else None,
        )
        result = AssetResult(spec.name, partition, "materialized", meta.row_count, len(meta.schema) or None,
                             duration, tuple(checks), run_id=run_id)
        return mat, result, before

    def _previous_data_version(self, asset: str, partition: str) -> str | None:
        latest = self.project().store.latest_materialization(asset, partition)  # one indexed lookup
        return None if latest is None else latest.data_version

    # -- the session cache ------------------------------------------------------------------------------------
    def _remember(self, asset: str, partition: str, data_version: str, value: Any, *, handler: str | None) -> None:
        self.cache.remember(asset, partition, data_version, value, handler=handler)

    def _paths_for(self, ids: list[int]) -> dict[int, tuple[str, str | None]]:
        records = self.project().store.materializations_by_id(ids)
        return {i: (r.storage_path, r.io) for i, r in records.items()}

    def _now_stale_readers(self, graph: Any, spec: AssetSpec, partition: str) -> tuple[str, ...]:
        """Direct downstream partitions that read ``spec[partition]`` and were materialized: they just went stale
        (the ones never materialized were MISSING before and still are)."""
        readers = downstream_readers(graph, spec, partition)
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


def _record_failure(life: Any, spec: AssetSpec, exc: BaseException) -> None:
    """Finalize a failed interactive run; never let the bookkeeping hide the error the user must see."""
    error = redact(str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}".removesuffix(": "))
    try:
        life.fail(error, cell=spec.cell_index, checks=getattr(exc, "checks", ()),
                  status=CANCELED if isinstance(exc, KeyboardInterrupt) else FAILED)
    except Exception:  # noqa: BLE001 - e.g. the store is unreachable: the original exception is what matters
        pass


def _now() -> Any:
    from notebook_orch.project import utcnow

    return utcnow()


__all__ = [
    "AssetResult",
    "AssetRuntime",
    "NotebookOrchError",
    "RESET_ERROR",
    "RUN_CONTEXT",
    "find_project_root",
    "reset_for_warm_run",
]
