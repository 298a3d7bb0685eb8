"""Shared helpers for the benchmark groups: timing with medians and the one output format.

Every figure is printed as ``NAME: VALUE UNIT (target ...)``; benchmarks print figures, they are not timed tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def report(name: str, value: float, unit: str, target: str = "") -> None:
    shown = f"{value:.3f}" if value < 100 else f"{value:,.0f}"
    suffix = f" (target {target})" if target else ""
    print(f"{name}: {shown} {unit}{suffix}", flush=True)


def median_seconds(fn: Callable[[], object], *, repeat: int = 5, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs; ``setup`` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
