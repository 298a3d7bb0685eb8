"""The scheduler daemon (``nbo scheduler``): cron ticks and data-aware triggers, one lease, one event cursor.

The decisions are pure (core/schedule.py, core/triggers.py); this package does the I/O around them.
"""

from notebook_orch.scheduler.daemon import PassReport, Scheduler
from notebook_orch.scheduler.declared import declared_schedules, sync_declared

__all__ = ["PassReport", "Scheduler", "declared_schedules", "sync_declared"]
