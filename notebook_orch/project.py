"""``Project``: the one Python API. The CLI, the magics and the widgets are thin faces over it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notebook_orch.config import ProjectConfig, load_config
from notebook_orch.core.status import RunStatus
from notebook_orch.errors import Problem

if TYPE_CHECKING:
    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.planning import PartitionSelection, RunPlan
    from notebook_orch.core.staleness import PartitionStatus, StalenessReport
    from notebook_orch.discovery import DiscoveryReport
    from notebook_orch.doctor import DoctorResult
    from notebook_orch.engine.executors import Executor
    from notebook_orch.engine.handle import RunHandle
    from notebook_orch.engine.runner import RunPlanReport
    from notebook_orch.store import MetadataStore
    from notebook_orch.store.records import RunRecord
    from notebook_orch.store.sqlite_read import SqliteReader


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Project:
    """A folder of notebooks, its metadata store and its value storage.

    >>> project = Project("path/to/project")      # reads [tool.notebook_orch] from its pyproject.toml
    >>> report = project.status()                  # staleness of every partition of every asset
    """

    def __init__(self, root: str | Path | None = None, *, config: ProjectConfig | None = None) -> None:
        self.config = config or load_config(root)
        self._store: MetadataStore | None = None
        self._reader: SqliteReader | None = None
        self._graph: AssetGraph | None = None
        self._discovery: DiscoveryReport | None = None

    # -- what is declared --------------------------------------------------------------------------------
    def discover(self) -> DiscoveryReport:
        """Read every notebook again (no kernel) and remember the result."""
        from notebook_orch.discovery import discover

        self._discovery = discover(self.config.notebooks, root=self.config.root, cache=self.discovery_cache_path)
        self._graph = None
        return self._discovery

    @property
    def discovery_cache_path(self) -> Path:
        """Where discovery remembers each notebook's declarations by content (a cache; never the store)."""
        return self.config.root / ".notebook_orch" / "cache" / "discovery.json"

    def problems(self) -> list[Problem]:
        """Every problem with the project: unreadable notebooks, bad declarations, then graph problems."""
        from notebook_orch.core.graph import validate_specs

        found = self.discover()
        problems = list(found.problems)
        if not found.notebooks and not problems:
            problems.append(Problem(
                f"No notebooks found under {self.config.notebooks}; put .ipynb files there or set "
                "'notebooks' in [tool.notebook_orch]."
            ))
        unparsed = {p.asset for p in problems if p.asset is not None}
        return problems + validate_specs(found.specs, unparsed=unparsed)

    @property
    def graph(self) -> AssetGraph:
        """The graph of the valid assets. A broken declaration does not raise: that asset and what is downstream of
        it are left out and kept in ``graph.invalid`` with their problems (see ``invalid_assets``)."""
        if self._graph is None:
            from notebook_orch.core.graph import build_valid_graph

            found = self.discover()  # callers drop _graph to have the notebooks read again
            self._graph = build_valid_graph(found.specs, problems=found.problems)
        return self._graph

    def reload(self) -> None:
        """Read the notebooks again on the next use of ``graph`` (the scheduler daemon calls this when a notebook
        changed; the discovery cache keeps unchanged notebooks from being parsed again)."""
        self._graph = None

    def invalid_assets(self) -> dict[str, list[Problem]]:
        """Each asset left out of the graph (its declaration is broken, or it depends on one that is) -> why."""
        return self.graph.invalid_problems()

    # -- what happened -----------------------------------------------------------------------------------
    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            from notebook_orch.store import open_store

            self._store = open_store(self.config.store_url)
            if self._reader is not None:  # the store answers from now on (reports ask _consumed_versions: falls back)
                self._reader.close()
                self._reader = None
        return self._store

    def reap(self, *, now: datetime | None = None) -> list[RunRecord]:
        """Mark runs whose heartbeat stopped as FAILED and withdraw the values they had published: no
        materialization will ever point at them. Writers call this (materialize, the scheduler, ``nbo reap``);
        reads never do."""
        from notebook_orch.engine.lifecycle import reap

        return reap(self.store, self.config.data_dir, timeout_s=self.config.heartbeat_timeout_s, now=now)

    def doctor(self, *, fix: bool = False, now: datetime | None = None) -> DoctorResult:
        """Check that the store's records, the value files and their markers agree (``nbo doctor``); with ``fix``,
        repair what is safe to repair (notebook_orch/doctor.py). Without ``fix`` it only reads."""
        from notebook_orch.doctor import run_doctor

        return run_doctor(self, fix=fix, now=now)

    def presumed_dead(self, *, now: datetime | None = None) -> list[RunRecord]:
        """RUNNING runs whose heartbeat stopped longer than the heartbeat timeout ago (not reaped yet: reads do not
        write; ``reap()`` or the next writer will)."""
        from datetime import timedelta

        limit = (now or utcnow()) - timedelta(seconds=self.config.heartbeat_timeout_s)
        live = [r for status in (RunStatus.RUNNING, RunStatus.WAITING)
                for r in self.store.list_runs(limit=10_000, status=status.value)]
        return [r for r in live if (r.heartbeat_at or r.started_at) < limit]

    def status(self, *, now: datetime | None = None) -> StalenessReport:
        from notebook_orch.core.staleness import resolve_staleness

        now = now or utcnow()
        graph = self.graph
        reader = self._fast_reader()
        if reader is not None:
            try:
                snapshot = reader.snapshot()
            except (sqlite3.Error, ValueError):
                pass  # the store explains what is wrong, below
            else:
                return resolve_staleness(graph, snapshot, now=now, consumed=self._consumed_versions)
        store = self.store
        return resolve_staleness(graph, store.snapshot(), now=now, consumed=store.consumed_versions)

    def _fast_reader(self) -> SqliteReader | None:
        """A sqlite3 reader when the store is a SQLite file at this schema version and not opened yet: a cold
        ``nbo status`` then never imports SQLAlchemy (store/sqlite_read.py). Same rows, same SQL, same result."""
        if self._store is not None:
            return None
        if self._reader is None:
            from notebook_orch.store.sqlite_read import open_reader

            self._reader = open_reader(self.config.store_url)
        return self._reader

    def _consumed_versions(self, ids: Iterable[int]) -> dict[int, tuple[tuple[str, str, str], ...]]:
        # Asked by a report long after status() returned (explain): through the reader while it works, else the
        # store, which says what is wrong in its own words.
        ids = list(ids)
        if self._reader is not None:
            try:
                return self._reader.consumed_versions(ids)
            except sqlite3.Error:
                pass
        return self.store.consumed_versions(ids)

    def refresh(self, report: StalenessReport) -> set[tuple[str, str]]:
        """Fold the store's new events into ``report`` incrementally; returns what changed."""
        from notebook_orch.store.records import PARTITION_STATE_EVENTS

        touched: set[tuple[str, str]] = set()
        last = report.event_id
        while True:
            events = self.store.events_after(last, limit=10_000)
            if not events:
                break
            last = events[-1].id
            touched.update(
                (e.asset, e.partition) for e in events
                if e.kind in PARTITION_STATE_EVENTS and e.asset and e.partition
            )
        snap = self.store.snapshot(keys=sorted(touched))
        return report.apply(snap.assets, running=snap.running, event_id=last)

    def stale(self, *, assets: list[str] | None = None, now: datetime | None = None) -> list[PartitionStatus]:
        from notebook_orch.core.staleness import stale_partitions

        return stale_partitions(self.status(now=now), assets)

    def lineage(self, fmt: str = "text", *, with_status: bool = True, now: datetime | None = None) -> str:
        from notebook_orch.faces.lineage import render

        report = self.status(now=now) if with_status else None
        return render(self.graph, fmt, report)

    # -- making things happen -------------------------------------------------------------------------
    def plan(
        self,
        selection: str,
        *,
        partitions: PartitionSelection | None = None,
        downstream: bool = False,
        only_stale: bool = False,
        now: datetime | None = None,
    ) -> RunPlan:
        """Which runs a materialization would start (nothing is executed)."""
        from dataclasses import replace

        from notebook_orch.core.planning import plan_materialization

        graph = self.graph
        chosen = graph.select(selection)  # a named invalid asset is refused here, naming its problem
        report = self.status(now=now)
        plan = plan_materialization(graph, report, selection=chosen, partitions=partitions, downstream=downstream,
                                    only_stale=only_stale)
        # What the selection reaches but cannot run (invalid assets downstream of x+, say) is said, not dropped.
        reach = " ".join(f"{name}+" for name in chosen) if downstream else selection
        left_out = tuple((name, graph.invalid[name].describe(located=True))
                         for name in graph.select(reach, include_invalid=True) if name in graph.invalid)
        return replace(plan, left_out=left_out) if left_out else plan

    def submit(
        self,
        selection: str,
        *,
        partitions: PartitionSelection | None = None,
        downstream: bool = False,
        only_stale: bool = False,
        executor: str | Executor | None = None,
        workers: int = 2,
        retries: int | None = None,
        mode: str = "warm",
        kind: str = "manual",
        execution_timeout_s: float | None = None,
        executor_options: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        first_attempt: int = 1,
    ) -> RunHandle:
        """Plan and start in the background; returns at once with a ``RunHandle`` (wait, cancel, progress).

        The one path every face takes: the CLI, ``%nbo materialize``, the widget's buttons and the scheduler.
        Runs whose heartbeat stopped are reaped first: this is a writer. ``parameters`` are notebook parameters
        papermill injects into every run of the plan (a schedule's ``--param``), overriding the notebook's
        ``parameters`` cell. ``first_attempt`` numbers the first attempt (the scheduler's retry of a run that died
        continues that run's count; ``retries`` are then the attempts left).
        """
        from notebook_orch.core.parameters import check_parameters
        from notebook_orch.core.specs import check_run_options
        from notebook_orch.engine.executors import default_registry
        from notebook_orch.engine.handle import RunHandle
        from notebook_orch.engine.runner import build_requests

        check_run_options(workers=workers, retries=retries, execution_timeout_s=execution_timeout_s,
                          first_attempt=first_attempt)
        params = check_parameters(parameters)
        self.check_concurrency()
        self.reap()
        plan = self.plan(selection, partitions=partitions, downstream=downstream, only_stale=only_stale)
        requests = build_requests(self, plan, kind=kind, mode=mode, retries=retries,
                                  execution_timeout_s=execution_timeout_s, parameters=params,
                                  first_attempt=first_attempt)
        if executor is None:  # the project's [tool.notebook_orch] executor, local by default
            executor = self.config.executor
        if isinstance(executor, str):
            options = dict(executor_options or {})
            if executor == "dask" and not options.get("address") and self.config.dask_address:
                options["address"] = self.config.dask_address
            chosen = default_registry().create(executor, workers=workers, **options)
            return RunHandle(plan, requests, chosen, own_executor=True, store=self.store)
        return RunHandle(plan, requests, executor, own_executor=False, store=self.store)

    def check_concurrency(self) -> None:
        """Refuse (``ConfigError``, every problem listed) a ``--pool`` the config does not declare, or a per-asset
        limit naming no asset: runs would silently go unlimited."""
        from notebook_orch.core.pools import concurrency_problems
        from notebook_orch.errors import ConfigError

        spec = self.config.concurrency
        graph = self.graph
        if spec.empty:
            return
        specs = graph.specs
        # An invalid asset is still an asset (shown as INVALID): a limit naming it is no typo.
        asset_pools = {name: () for name in graph.invalid} | {s.name: s.pools for s in specs}
        problems = concurrency_problems(spec, asset_pools, {s.name: s.location for s in specs},
                                        where=str(self.config.root / "pyproject.toml"))
        if problems:
            raise ConfigError(" ".join(problems) if len(problems) == 1 else
                              f"{len(problems)} concurrency problems:\n" + "\n".join(f"- {p}" for p in problems))

    def pools(self) -> list[dict[str, Any]]:
        """Each declared pool: its limit, the runs holding a slot now, and how many runs wait (all pools share the
        WAITING runs' count: a waiting run waits for the first full pool it needs). A read: changes nothing."""
        from notebook_orch.core.pools import ASSET_PREFIX, GLOBAL_POOL, POOL_PREFIX

        spec = self.config.concurrency
        if spec.empty:
            return []
        held = self.store.pool_usage()
        declared = ({GLOBAL_POOL: spec.max_runs} if spec.max_runs is not None else {}) | {
            ASSET_PREFIX + a: n for a, n in spec.assets.items()} | {POOL_PREFIX + p: n for p, n in spec.pools.items()}
        return [{"pool": key, "limit": limit, "in_use": len(held.get(key, [])), "holders": held.get(key, [])}
                for key, limit in sorted(declared.items())]

    def pool_waiters(self) -> list[Any]:
        """The runs WAITING for a pool slot in the store's first-come, first-served queue, first first: each one's
        position, since when, and per pool how many runs wait ahead of it (``store.PoolWait``). A read."""
        return self.store.pool_waiters()

    def materialize(self, selection: str, *, progress: Any = None, **options: Any) -> RunPlanReport:
        """``submit(...)`` and wait for the report (``progress`` shows each run as it ends)."""
        from notebook_orch.engine.runner import follow

        return follow(self.submit(selection, **options), progress)

    def runs(self, *, limit: int = 20, status: str | None = None, asset: str | None = None) -> list[RunRecord]:
        from notebook_orch.core.specs import check_run_options

        check_run_options(limit=limit)
        return self.store.list_runs(limit=limit, status=status, asset=asset)

    # -- SLAs, impact, metrics (scheduler/sla_views.py; docs/scheduling.md) ---------------------------------
    def sla(self, *, assets: list[str] | None = None, since: timedelta = timedelta(days=7),
            now: datetime | None = None) -> list[Any]:
        """Each SLA partition with a deadline in the window: recorded MET/MISSED, unjudged, and the next OPEN one."""
        from notebook_orch.scheduler.sla_views import sla_rows

        return sla_rows(self, assets=assets, since=since, now=now or utcnow())

    def impact(self, asset: str, *, partition: str | None = None, delay: timedelta = timedelta(0),
               now: datetime | None = None) -> Any:
        """What a delay of ``asset[partition]`` does downstream (``core.impact.ImpactReport``)."""
        from notebook_orch.scheduler.sla_views import impact

        return impact(self, asset, partition=partition, delay=delay, now=now or utcnow())

    def metrics(self, *, since: timedelta = timedelta(days=7), now: datetime | None = None) -> Any:
        """Scheduler metrics over the window (``core.metrics.MetricsReport``)."""
        from notebook_orch.scheduler.sla_views import metrics

        return metrics(self, since=since, now=now or utcnow())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
