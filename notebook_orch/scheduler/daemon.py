"""One scheduler pass, and the loop around it (``nbo scheduler``).

A pass: take or renew the lease (a daemon without it is a standby and does nothing else), reap dead runs, store
the schedules declared on assets, fire due ticks, then follow the event log: retry runs that died with attempts
left (scheduler/retries.py) and start the ``--auto`` partitions whose joins completed.

Never twice, never lost:
- a tick is inserted (unique per schedule and tick time) *before* its runs start; the daemon that inserted it
  starts them, any other sees it recorded and moves on. A tick left STARTED with no runs (the daemon died between
  the insert and the submit) is finished by the next pass: if runs of kind ``schedule`` for its targets started
  after it was written they are linked, otherwise it is submitted then;
- the event cursor is saved in the same transaction as the pending joins its events reached, so a restart
  re-reads at most what was not saved, and joins are idempotent;
- on a first start (no saved cursor) the follower starts at the newest event: turning automation on acts on
  what changes from then on, it does not replay history.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from notebook_orch.core.schedule import parse_catchup, plan_catchup, target_partition
from notebook_orch.scheduler.joins import SubmittedJoins, evaluate_pending, held_assets, reached_by

log = logging.getLogger("notebook_orch.scheduler")

LEASE_TTL_S = 15.0
REST_PASS_S = 5.0  # at rest (no event, no tick, no source), a full pass this often: lease, reaping, new schedules
JOIN_LIMIT = 10_000  # joins decided per pass; the rest wait, in order, for the next pass


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class PassReport:
    leader: bool = False
    ticks_fired: list[tuple[str, datetime, str | None]] = field(default_factory=list)
    ticks_skipped: int = 0
    triggered: list[tuple[str, str]] = field(default_factory=list)
    waiting: int = 0
    reaped: int = 0
    retried: int = 0
    observed: int = 0  # external source partitions recorded (their marker appeared or changed)
    events: int = 0


class Scheduler:
    """Drive schedules and triggers of one project. ``clock`` returns an aware UTC time (tests inject it)."""

    def __init__(self, project: Any, *, holder: str | None = None, lease_ttl_s: float = LEASE_TTL_S,
                 executor: str = "local", workers: int = 2, clock: Callable[[], datetime] = _utcnow,
                 join_limit: int = JOIN_LIMIT) -> None:
        self.project = project
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_ttl_s = lease_ttl_s
        self.executor = executor
        self.workers = workers
        self.clock = clock
        self.join_limit = join_limit
        self.handles: list[Any] = []
        self.submitted = SubmittedJoins()  # triggered, not yet recorded: still pending in the store
        self._follower: Any = None
        self._sla: Any = None  # scheduler/sla_watch.SlaWatch, made on the first pass as leader
        self._generation = 0  # the store's file_generation this daemon follows (_after_restore)
        self._leader = False
        self.next_due: datetime | None = None  # the earliest upcoming tick: the loop wakes for it
        from notebook_orch.scheduler.sources import SourceObserver

        self.sources = SourceObserver(project)
        from notebook_orch.scheduler.notebooks import NotebookWatch

        self._recheck = False  # decide the pending joins this pass even without a new event
        self.notebooks = NotebookWatch(project)  # declarations edited while the daemon runs (scheduler/notebooks)
        self._pool: Any = None  # the one executor of every plan this daemon starts (run_executor)
        self._due: dict[str, tuple[Any, datetime, datetime]] = {}  # schedule -> (row shape, since, next due)
        self._synced: tuple[Any, datetime] = (None, datetime.min.replace(tzinfo=timezone.utc))

    @property
    def sched(self) -> Any:
        return self.project.store.scheduling

    # -- one pass -------------------------------------------------------------------------------------------
    def run_once(self) -> PassReport:
        report = PassReport()
        now = self.clock()
        # The store's file overwritten in place or damaged would otherwise be noticed only when a damaged page is
        # read, after writes into it: refuse (StoreError, said once by serve) until it is restored.
        self.project.store.check_file()
        self._after_restore()
        if not self.sched.acquire_lease(self.holder, ttl_s=self.lease_ttl_s, now=now):
            if self._leader:
                log.warning("lost the scheduler lease; standing by")
            self._leader = False
            self._follower = None  # a new leader may have moved the cursor
            return report
        if not self._leader:
            log.info("holding the scheduler lease as %s", self.holder)
            self._due.clear()  # another daemon may have fired ticks meanwhile
            self._synced = (None, self._synced[1])
            self._recheck = True  # joins a predecessor left pending (e.g. it died before their runs were recorded)
        self._leader = report.leader = True
        self._prune_handles()
        self._watch_notebooks()
        self._follow()  # before reaping: a first start's cursor must not skip the runs this pass reaps (retries)
        report.reaped = len(self.project.reap())
        self._sync_declared(now)
        self._finish_started_ticks()
        self._fire_ticks(now, report)
        report.observed = len(self.sources.observe(now))
        self._follow_events(now, report)
        self._watch_slas(now)
        return report

    def _watch_notebooks(self) -> None:
        """Apply declarations edited since the last pass (``--auto``, ``--trigger``, ``--source``, ``--sla``,
        ``--schedule``): the rest of the pass reads the graph read again. A notebook that cannot be read now is
        logged and tried again next pass; the daemon keeps running."""
        try:
            self._recheck = bool(self.notebooks.check()) or self._recheck  # held joins of a fixed asset, say
        except Exception:  # noqa: BLE001 - e.g. the folder is being replaced: keep the graph we have
            log.exception("reading the notebooks again failed; keeping the declarations read before")

    def _prune_handles(self) -> None:
        """Forget the plans that ended, saying which stopped on an error (their runs are settled; the other plans
        on the shared executor went on: ``RunHandle`` stops only its own runs)."""
        live = []
        for h in self.handles:
            if not h.done():
                live.append(h)
                continue
            try:
                h.report()
            except Exception as exc:  # noqa: BLE001 - the plan's error: logged, the daemon carries on
                assets = sorted({a for r in h.plan.runs for a in r.assets})
                log.error("a plan of %s stopped on an error; its runs were settled, other plans go on: %s: %s",
                          ",".join(assets), type(exc).__name__, exc)
        self.handles = live

    def _after_restore(self) -> None:
        """The store's file was replaced (a backup restored): its event log may end before the cursors this daemon
        holds in memory, so events written from now on would get ids it thinks it has seen. Follow again from the
        cursors saved in the restored file, and read ticks again."""
        generation = getattr(self.project.store, "file_generation", 0)
        if generation == self._generation:
            return
        self._generation = generation
        self._follower = None
        self._sla = None
        self._due.clear()
        saved = self.sched.cursor()
        log.warning("the store's file changed: following its event log again from its saved cursor (%s)",
                    "none: from its newest event" if saved is None else f"event {saved}")

    def _watch_slas(self, now: datetime) -> None:
        """SLA deadlines, failures after the last retry, the alert hook (scheduler/sla_watch.py)."""
        from notebook_orch.errors import StoreError
        from notebook_orch.scheduler.sla_watch import SlaWatch

        self._sla = self._sla or SlaWatch(self.project)
        try:
            self._sla.run_once(now)
        except StoreError:  # the store itself (gone, damaged): the pass stops and serve says it once
            raise
        except Exception:  # an SLA or hook problem must not stop schedules and triggers
            log.exception("SLA check failed; retrying on the next pass")

    def _sync_declared(self, now: datetime) -> None:
        """Store the schedules declared on assets: when the notebooks were read again, and each minute (a schedule
        removed by hand comes back); not every pass, which cost a daemon at rest a query and a walk of every
        asset."""
        from notebook_orch.scheduler.declared import sync_declared

        graph = self.project.graph
        if graph is self._synced[0] and (now - self._synced[1]).total_seconds() < 60:
            return
        self._synced = (graph, now)
        for name in sync_declared(self.project, now=now):
            log.warning("asset %r declares --schedule but a schedule added by hand has that name; the asset's "
                        "is ignored until one is renamed", name)

    # -- schedules ------------------------------------------------------------------------------------------
    def _fire_ticks(self, now: datetime, report: PassReport) -> None:
        """Fire what is due. Each schedule's next due tick is kept between passes (reading its last tick and
        walking croniter for 100 schedules every pass cost a daemon at rest ~4 % of a core); it is computed again
        when the schedule's row changes, after it fires, and when this daemon (re)gains the lease."""
        from notebook_orch.core.schedule import next_tick

        self.next_due = None
        for s in self.sched.list_schedules():
            if s.paused:
                continue
            shape = (s.cron, s.timezone, s.catchup, s.active_since)
            cached = self._due.get(s.name)
            if cached is None or cached[0] != shape:
                last = self.sched.last_tick_at(s.name)
                since = max(t for t in (last, s.active_since) if t is not None).replace(tzinfo=timezone.utc)
                cached = self._due[s.name] = (shape, since, next_tick(s.cron, s.timezone, since))
            _, since, due = cached
            if due > now:
                self.next_due = due if self.next_due is None else min(self.next_due, due)
                continue
            del self._due[s.name]
            plan = plan_catchup(s.cron, s.timezone, last_tick=since, now=now, policy=parse_catchup(s.catchup))
            if plan.skipped:
                log.info("schedule %s: catch-up %s drops %d missed tick(s)", s.name, s.catchup, plan.skipped)
                report.ticks_skipped += plan.skipped
            if not plan.fire:  # every tick up to now was dropped: wait for the next one (not again each pass)
                self._due[s.name] = (shape, now, next_tick(s.cron, s.timezone, now))
            for tick in plan.fire:
                self._fire(s, tick, report)

    def _targets(self, s: Any, tick: datetime) -> dict[str | None, list[str]]:
        graph = self.project.graph
        by_key: dict[str | None, list[str]] = {}
        for name in graph.select(s.selection):
            key = target_partition(graph.spec(name).partitions, s.partition_rule, tick, s.timezone)
            by_key.setdefault(key, []).append(name)
        return by_key

    def _fire(self, s: Any, tick: datetime, report: PassReport) -> None:
        try:
            targets = self._targets(s, tick)
        except Exception as exc:  # a selection or rule that no longer fits the notebooks: record, do not crash
            self.sched.record_tick(s.name, tick, partition=None, status="FAILED", message=str(exc),
                                   now=self.clock())
            log.error("schedule %s tick %s: %s", s.name, tick.isoformat(), exc)
            return
        keys = sorted(k for k in targets if k is not None)
        shown = ",".join(keys) or None
        rec = self.sched.record_tick(s.name, tick, partition=shown, now=self.clock(), params=s.params)
        if rec is None:
            return  # recorded already: another daemon, or this one before a restart
        _crash_point()
        self._submit_tick(rec, s, targets)
        report.ticks_fired.append((s.name, tick, shown))

    def _submit_tick(self, rec: Any, s: Any, targets: dict[str | None, list[str]]) -> None:
        from notebook_orch.core.planning import PartitionSelection

        run_ids: list[str] = []
        held: list[str] = []
        try:
            for key, names in targets.items():
                parts = PartitionSelection(keys=(key,)) if key is not None else None
                handle = self.project.submit(",".join(names), partitions=parts, kind="schedule",
                                             executor=self.run_executor(), workers=self.workers,
                                             parameters=dict(s.params if rec.params is None else rec.params))
                self.handles.append(handle)
                run_ids.extend(handle.run_ids)
                held += self._held_elsewhere(handle)
                handle.on_outcome(lambda o, rec=rec, s=s, ids=run_ids: self._locked(rec, s, o, ids))
        except Exception as exc:
            self.sched.update_tick(rec.id, status="FAILED", run_ids=run_ids, message=str(exc))
            log.error("schedule %s tick %s failed to start: %s", s.name, rec.tick_at.isoformat(), exc)
            return
        self.sched.update_tick(rec.id, status="SUBMITTED", run_ids=run_ids, message="; ".join(held) or None)
        for line in held:
            log.warning("schedule %s tick %s: %s", s.name, rec.tick_at.isoformat(), line)
        log.info("schedule %s tick %s: started %d run(s) for %s", s.name, rec.tick_at.isoformat(),
                 len({r for h in self.handles[-len(targets):] for r in h.run_ids[:1]}), rec.partition or "all")

    def _held_elsewhere(self, handle: Any) -> list[str]:
        """The tick's partitions its plan left to another run (already running), naming that run."""
        skipped = [(a, p) for a, p, why in handle.plan.skipped if why == "running"]
        if not skipped:
            return []
        running = self.project.store.running()
        return [f"{a}[{p}] not run: run {running.get((a, p), '(ended since)')} was already materializing it"
                for a, p in skipped]

    def _locked(self, rec: Any, s: Any, outcome: Any, run_ids: list[str]) -> None:
        """A run of the tick refused at start because another run took the partition first: say which."""
        if outcome.status != "LOCKED":
            return
        log.warning("schedule %s tick %s: %s", s.name, rec.tick_at.isoformat(), outcome.error)
        try:
            self.sched.update_tick(rec.id, status="SUBMITTED", run_ids=run_ids, message=outcome.error)
        except Exception:  # noqa: BLE001 - the log line above has said it; the tick stays as recorded
            pass

    def _finish_started_ticks(self) -> None:
        """Ticks recorded but never submitted (the daemon died in between): link runs that did start, or submit."""
        for rec in self.sched.ticks(status="STARTED", limit=100):
            s = self.sched.get_schedule(rec.schedule)
            if s is None:
                self.sched.update_tick(rec.id, status="SKIPPED", message="schedule deleted before its runs started")
                continue
            tick = rec.tick_at.replace(tzinfo=timezone.utc)
            targets = self._targets(s, tick)
            started = self._runs_since(rec.created_at, targets)
            if started:
                self.sched.update_tick(rec.id, status="SUBMITTED", run_ids=started)
                log.info("schedule %s tick %s: linked %d run(s) started before a restart", s.name,
                         tick.isoformat(), len(started))
            else:
                log.info("schedule %s tick %s: recorded before a restart, starting its runs now", s.name,
                         tick.isoformat())
                self._submit_tick(rec, s, targets)

    def _runs_since(self, since: datetime, targets: dict[str | None, list[str]]) -> list[str]:
        wanted = {(a, k) for k, names in targets.items() for a in names}
        out = []
        for run in self.project.store.list_runs(limit=1000):
            if run.kind != "schedule" or run.started_at < since:
                continue
            if any((a, p) in wanted or (a, None) in wanted for a in run.assets for p in run.partition_keys):
                out.append(run.run_id)
        return out

    # -- triggers -------------------------------------------------------------------------------------------
    def _follow(self) -> Any:
        if self._follower is None:
            from notebook_orch.store.follow import EventFollower

            saved = self.sched.cursor()
            if saved is None:
                saved = self.project.store.last_event_id()
                self.sched.save_cursor(saved)
                log.info("following the event log from event %d (automation acts on what changes from now)", saved)
            self._follower = EventFollower(self.project.store, after=saved)
        return self._follower

    def _follow_events(self, now: datetime, report: PassReport) -> None:
        from notebook_orch.scheduler.retries import retry_dead_runs

        follower = self._follow()
        events = follower.poll(limit=5000)
        report.events = len(events)
        recheck, self._recheck = self._recheck, False
        if not events and not recheck:
            return  # nothing changed: pending joins wait for the events that can complete them
        graph = self.project.graph
        specs = {s.name: s for s in graph.specs}
        naive = now.astimezone(timezone.utc).replace(tzinfo=None)
        pauses = self.sched.auto_pauses()
        if events:
            retried = retry_dead_runs(self, events)
            self.handles += retried
            report.retried = len(retried)
            reached = reached_by(self.project, specs, events, naive, pauses)
            self.sched.save_cursor(follower.cursor, add_joins=reached, now=now)
        self.decide(specs, naive, report, pauses=pauses)

    def preview(self) -> Any:
        """What the next pass would start: the pending joins plus those reached by events not yet read."""
        from notebook_orch.store.follow import EventFollower

        now = self.clock()
        naive = now.astimezone(timezone.utc).replace(tzinfo=None)
        specs = {s.name: s for s in self.project.graph.specs}
        saved = self.sched.cursor()
        pauses = self.sched.auto_pauses()
        reached: list[tuple[str, str]] = []
        if saved is not None:
            follower = EventFollower(self.project.store, after=saved)
            while batch := follower.poll(limit=5000):
                reached += reached_by(self.project, specs, batch, naive, pauses)
        held = held_assets(self.project, pauses)
        joins = [j for j in dict.fromkeys(self.sched.pending() + reached) if j[0] not in held]
        return evaluate_pending(self.project, specs, joins, naive, limit=self.join_limit)

    def decide(self, specs: dict[str, Any], naive: datetime, report: PassReport, *,
               pauses: dict[str, Any] | None = None) -> None:
        from notebook_orch.core.planning import PartitionSelection

        self.sched.remove_pending(self.submitted.recorded(self.project.store))
        held = held_assets(self.project, self.sched.auto_pauses() if pauses is None else pauses)
        joins = [j for j in self.sched.pending() if j[0] not in held and j not in self.submitted]
        plan = evaluate_pending(self.project, specs, joins, naive, limit=self.join_limit)
        by_asset: dict[str, list[str]] = {}
        for asset, partition in plan.start:
            by_asset.setdefault(asset, []).append(partition)
        started: list[tuple[str, str]] = []
        for asset, keys in by_asset.items():
            try:
                handle = self.project.submit(asset, partitions=PartitionSelection(keys=tuple(keys)), kind="trigger",
                                             executor=self.run_executor(), workers=self.workers)
            except Exception as exc:
                log.error("trigger %s %s could not start: %s", asset, keys, exc)
                continue
            self.handles.append(handle)
            started += [(asset, k) for k in keys]
            self.submitted.add([(asset, k) for k in keys], handle)  # pending until the store records the run
            log.info("trigger: started %s for %s (every input fresh)", asset, ", ".join(keys))
        self.sched.remove_pending([(d.asset, d.partition) for d in plan.dropped])
        report.triggered += started
        report.waiting = len(plan.waiting) + len(plan.deferred)

    def run_executor(self) -> Any:
        """One executor for every plan the daemon starts, made on first use: its worker processes (and their warm
        kernels) stay up between triggers, so a triggered run starts without spawning anything."""
        if self._pool is None:
            from notebook_orch.engine.executors import default_registry

            options = {}
            if self.executor == "dask" and self.project.config.dask_address:
                options["address"] = self.project.config.dask_address
            self._pool = default_registry().create(self.executor, workers=self.workers, **options)
        return self._pool

    def _close_executor(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    # -- the loop -------------------------------------------------------------------------------------------
    def serve(self, stop: threading.Event, *, interval_s: float = 1.0, drain_s: float = 30.0) -> None:
        """Pass after pass until ``stop`` is set; between passes sleep until the next event or ``interval_s``."""
        log.info("scheduler started for %s (holder %s)", self.project.config.root, self.holder)
        from notebook_orch.errors import StoreError

        said = None
        try:
            while not stop.is_set():
                try:
                    report = self.run_once()
                    said = None
                except StoreError as exc:  # the store is gone, replaced, damaged or locked: say it once, retry
                    if str(exc) != said:
                        log.error("scheduler pass failed; retrying every %.1f s: %s", interval_s, exc)
                    said = str(exc)
                    report = PassReport()
                except Exception:
                    log.exception("scheduler pass failed; retrying")
                    report = PassReport()
                if stop.is_set():
                    break
                wait = interval_s
                if self.next_due is not None:
                    wait = min(wait, max(0.0, (self.next_due - self.clock()).total_seconds()))
                if report.leader and self._follower is not None:
                    self._rest(stop, interval_s)
                else:
                    stop.wait(wait)
        finally:
            self._drain(drain_s)
            self._close_executor()
            if self._leader:
                try:
                    self.sched.release_lease(self.holder)
                except StoreError as exc:  # a store that is gone or damaged: the lease expires by itself
                    log.warning("could not give the scheduler lease up (it expires in %.0f s): %s",
                                self.lease_ttl_s, exc)
            log.info("scheduler stopped")

    def _rest(self, stop: threading.Event, interval_s: float) -> None:
        """Between passes: wake for an event, the next tick, or (with sources declared) the next look at their
        markers; at rest, for the lease, reaping and schedules changed from elsewhere, a pass every ``REST_PASS_S``
        (a full pass every second cost a daemon with 100 schedules and 1,000 --auto assets ~1 % of a core)."""
        import time

        from notebook_orch.errors import StoreError

        rest_s = interval_s if self.sources.watching else max(interval_s, min(REST_PASS_S, self.lease_ttl_s / 3))
        until = time.monotonic() + rest_s
        while not stop.is_set():
            left = until - time.monotonic()
            if self.next_due is not None:
                left = min(left, (self.next_due - self.clock()).total_seconds())
            if left <= 0:
                return
            try:
                if self.project.store.wait_for_events(self._follower.cursor, timeout=min(left, interval_s)):
                    stop.wait(0.02)  # let a burst of commits land: one pass reads them all
                    return
            except StoreError:  # the next pass says what is wrong
                stop.wait(min(left, interval_s))
                return

    def finish(self) -> None:
        """Wait for every plan this daemon started, then give the lease up (``nbo scheduler --once``)."""
        for h in self.handles:
            h.wait()
        self._close_executor()
        if self._leader:
            self.sched.release_lease(self.holder)
            self._leader = False

    def _drain(self, drain_s: float) -> None:
        live = [h for h in self.handles if not h.done()]
        if not live:
            return
        log.info("waiting up to %.0f s for %d plan(s) in flight", drain_s, len(live))
        for h in live:
            try:
                h.wait(timeout=drain_s)
            except Exception:
                h.cancel()


def _crash_point() -> None:
    """Tests kill the daemon with SIGKILL exactly between writing a tick and starting its runs, the window the
    recovery in ``_finish_started_ticks`` exists for: ``NBO_TEST_KILL_AFTER_TICK=PATH`` kills the first daemon
    that gets here (the one that creates PATH); the others carry on."""
    path = os.environ.get("NBO_TEST_KILL_AFTER_TICK")
    if not path:
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
