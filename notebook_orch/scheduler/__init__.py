"""The scheduler daemon (``nbo scheduler``): cron ticks and data-aware triggers, one lease, one event cursor.

The decisions are pure (core/schedule.py, core/triggers.py); this package does the I/O around them. Its names are
imported on first use: ``nbo status`` reads ``scheduler.sla_views`` and must not pay for the daemon's store
(SQLAlchemy, ~0.45 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notebook_orch.scheduler.daemon import PassReport, Scheduler
    from notebook_orch.scheduler.declared import declared_schedules, sync_declared

_WHERE = {"PassReport": "daemon", "Scheduler": "daemon", "declared_schedules": "declared", "sync_declared": "declared"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f"notebook_orch.scheduler.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'notebook_orch.scheduler' has no attribute {name!r}")


__all__ = ["PassReport", "Scheduler", "declared_schedules", "sync_declared"]
