"""The daemon's SLA and alert duty: judge deadlines that passed, queue alerts, hand them to the hook.

One call per scheduler pass (``SlaWatch.run_once``), only by the lease holder:

1. **Judge.** For each asset with ``--sla``, every partition whose deadline fell since the asset's watermark gets
   one verdict (core/sla.judge). A miss is recorded with an ``SLA_MISSED`` event and an alert in the same
   transaction as the verdict and the new watermark (store/sla.py), so it is recorded once. A new or changed SLA
   is watched from the moment it is first seen: old partitions are not judged.
2. **Final failures.** A follower of its own (cursor ``alerts`` in the scheduler's cursor table, saved with the
   alerts it queued) reads ``RUN_FAILED`` events; a run whose attempt exceeded its assets' ``--retries`` failed
   for good and is alerted. Interactive runs are not: the person is looking at the cell.
3. **Deliver.** Each pending alert is given to ``alert_command`` (project config) as JSON on stdin; exit code 0
   marks it SENT; otherwise it is retried on the next passes, up to ``MAX_ATTEMPTS`` times, then FAILED. Without a
   command, alerts are marked NO_HOOK (they stay listed by ``nbo sla --alerts``). Hooks get at most
   ``DELIVERY_BUDGET_S`` per pass, so a slow hook delays alerts, not schedules and triggers.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from notebook_orch.core.sla import due_partitions, judge
from notebook_orch.core.status import Status

log = logging.getLogger("notebook_orch.scheduler")

ALERT_CURSOR = "alerts"
MAX_ATTEMPTS = 3
HOOK_TIMEOUT_S = 10.0
DELIVERY_BUDGET_S = 5.0  # hook time per pass; alerts left over are delivered on the next passes, oldest first


@dataclass
class SlaPassReport:
    judged: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0
    sent: int = 0
    hook_errors: int = 0


def iso(t: datetime | None) -> str | None:
    """Naive UTC (the store's convention) as ISO 8601 with an explicit +00:00."""
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).isoformat()


class SlaWatch:
    def __init__(self, project: Any) -> None:
        self.project = project
        self._follower: Any = None
        # asset -> ((sla, partitions, watermark), the next deadline): skip the window scan until it comes
        self._next_due: dict[str, tuple[Any, datetime | None]] = {}

    def run_once(self, now: datetime) -> SlaPassReport:
        """``now``: an aware or naive UTC time (the daemon's clock)."""
        naive = now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now
        report = SlaPassReport()
        self.judge(naive, report)
        self.follow_failures(naive, report)
        self.deliver(naive, report)
        return report

    # -- 1. deadlines ----------------------------------------------------------------------------------------
    def judge(self, now: datetime, report: SlaPassReport) -> None:
        from notebook_orch.store.sla import NewVerdict

        store = self.project.store.sla
        specs = [s for s in self.project.graph.specs if s.sla is not None]
        if not specs:
            return
        watched = store.watched()
        due: list[tuple[Any, str, datetime]] = []
        watermarks: dict[str, datetime] = {}
        for spec in specs:
            w = watched.get(spec.name)
            if w is None or w.sla != spec.sla.text:
                store.start_watch(spec.name, spec.sla.text, now=now)
                log.info("SLA %r of %s watched from %s", spec.sla.text, spec.name, iso(now))
                continue
            mark = (spec.sla.text, spec.partitions, w.checked_until)
            known = self._next_due.get(spec.name)
            if known is not None and known[0] == mark and (known[1] is None or now < known[1]):
                continue  # its next deadline has not come: no window scan this pass (idle daemons stay idle)
            found = list(due_partitions(spec.sla, spec.partitions, after=w.checked_until, until=now))
            if not found:
                upcoming = next(due_partitions(spec.sla, spec.partitions, after=now, until=now + timedelta(days=2)),
                                None)
                # No deadline within two days (a monthly SLA, a range that ended): look again in an hour.
                self._next_due[spec.name] = (mark, upcoming[1] if upcoming else now + timedelta(hours=1))
            if found:
                watermarks[spec.name] = now
                due += [(spec, key, dl) for key, dl in found]
        if not due:
            return
        status = self.project.status(now=now)
        history = store.history((spec.name, key) for spec, key, _ in due)
        verdicts = []
        for spec, key, dl in due:
            st = _status(status, spec.name, key)
            made = history.get((spec.name, key))
            mat_at = made[-1][1] if made else None
            v = judge(dl, now=now, status=st, materialized_at=mat_at)
            alert = None
            if v.verdict.value == "MISSED":
                alert = miss_payload(self.project, spec, key, dl, now=now, status=st, reason=v.reason,
                                     materialized_at=mat_at)
            verdicts.append(NewVerdict(spec.name, key, spec.sla.text, dl, v.verdict.value, v.reason, alert))
        written = store.record_verdicts(verdicts, watermarks=watermarks, now=now)
        report.judged += len(written)
        for v in written:
            if v.verdict == "MISSED":
                report.missed.append((v.asset, v.partition))
                log.warning("SLA missed: %s[%s] was %s at its deadline %s (--sla %s)", v.asset, v.partition,
                            v.reason, iso(v.deadline), v.sla)

    # -- 2. failures after the last retry ---------------------------------------------------------------------
    def follow_failures(self, now: datetime, report: SlaPassReport) -> None:
        from notebook_orch.store.follow import EventFollower
        from notebook_orch.store.records import EV_RUN_FAILED

        store = self.project.store
        if self._follower is None:
            saved = store.scheduling.cursor(ALERT_CURSOR)
            if saved is None:  # a first start: alert on what fails from now on, not on history
                saved = store.last_event_id()
                store.sla.queue_alerts([], cursor=(ALERT_CURSOR, saved), now=now)
            self._follower = EventFollower(store, after=saved)
        events = self._follower.poll(limit=5000)
        if not events:
            return
        items = []
        for e in events:
            if e.kind != EV_RUN_FAILED or not e.run_id:
                continue
            run = store.get_run(e.run_id)
            if run is None or run.kind == "interactive":
                continue
            retries = max((self.project.graph.spec(a).retries for a in run.assets if a in self.project.graph),
                          default=0)
            if run.attempt <= retries:
                continue  # the executor retries it
            items.append((f"failed:{run.run_id}", "RUN_FAILED", failure_payload(self.project, run, e, retries)))
        report.failures += store.sla.queue_alerts(items, cursor=(ALERT_CURSOR, self._follower.cursor), now=now)

    # -- 3. the hook ------------------------------------------------------------------------------------------
    def deliver(self, now: datetime, report: SlaPassReport) -> None:
        store = self.project.store.sla
        pending = store.alerts(state="PENDING", limit=500)
        if not pending:
            return
        command = self.project.config.alert_command
        if not command:
            store.mark_alerts([a.id for a in pending], state="NO_HOOK", now=now)
            return
        import time

        deadline = time.monotonic() + DELIVERY_BUDGET_S
        for alert in pending:
            if time.monotonic() > deadline:
                break  # a slow hook must not hold up ticks and triggers: the rest go on the next passes
            error = run_hook(command, alert.payload, cwd=str(self.project.config.root))
            if error is None:
                store.mark_alert(alert.id, state="SENT", now=now)
                report.sent += 1
                continue
            report.hook_errors += 1
            final = alert.attempts + 1 >= MAX_ATTEMPTS
            store.mark_alert(alert.id, state="FAILED" if final else "PENDING", error=error, now=now)
            log.error("alert hook %s failed for %s (attempt %d of %d): %s", command[0], alert.key,
                      alert.attempts + 1, MAX_ATTEMPTS, error)


def run_hook(command: tuple[str, ...], payload: Any, *, cwd: str, timeout_s: float = HOOK_TIMEOUT_S) -> str | None:
    """Run the hook with ``payload`` as JSON on stdin; None when it exited 0, else what went wrong."""
    try:
        done = subprocess.run(list(command), input=json.dumps(payload, sort_keys=True) + "\n", text=True,
                              capture_output=True, timeout=timeout_s, cwd=cwd)
    except FileNotFoundError:
        return f"command not found: {command[0]!r} (alert_command in [tool.notebook_orch])"
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout_s:g} s"
    except OSError as exc:
        return f"could not start: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
        return f"exit code {done.returncode}: {tail[0][:300]}"
    return None


def _status(report: Any, asset: str, key: str) -> Status:
    try:
        return report.status(asset, key)
    except Exception:  # a key the asset does not know any more (range shortened): nothing can be fresh
        return Status.MISSING


def miss_payload(project: Any, spec: Any, key: str, due: datetime, *, now: datetime, status: Status, reason: str,
                 materialized_at: datetime | None) -> dict[str, Any]:
    """What the hook receives for an SLA miss (documented in docs/scheduling.md)."""
    return {
        "kind": "SLA_MISSED",
        "asset": spec.name,
        "partition": key,
        "sla": spec.sla.text,
        "deadline": iso(due),
        "detected_at": iso(now),
        "status": status.value,
        "reason": reason,
        "materialized_at": iso(materialized_at),
        "notebook": spec.notebook,
        "owner": spec.owner,
        "project": str(project.config.root),
        "message": (f"{spec.name}[{key}] was {reason} at its SLA deadline {due:%Y-%m-%d %H:%M} UTC "
                    f"(--sla {spec.sla.text!r})"),
    }


def failure_payload(project: Any, run: Any, event: Any, retries: int) -> dict[str, Any]:
    """What the hook receives for a run that failed after its last retry."""
    return {
        "kind": "RUN_FAILED",
        "run_id": run.run_id,
        "run_kind": run.kind,
        "notebook": run.notebook,
        "assets": list(run.assets),
        "partitions": list(run.partition_keys),
        "attempt": run.attempt,
        "retries": retries,
        "error": event.payload.get("error") or run.error,
        "error_cell": event.payload.get("error_cell"),
        "output_path": run.output_path,
        "failed_at": iso(run.ended_at or event.timestamp),
        "project": str(project.config.root),
        "message": (f"run {run.run_id} of {', '.join(run.assets)} [{', '.join(run.partition_keys)}] failed after "
                    f"{run.attempt} attempt(s): {event.payload.get('error') or run.error or ''}".rstrip(": ")),
    }


__all__ = ["SlaWatch", "SlaPassReport", "failure_payload", "miss_payload", "run_hook"]
