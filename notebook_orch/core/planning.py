"""Which notebook runs to start, in what order (pure: graph + staleness report + what the user asked -> ``RunPlan``).

The steps, each a small function below:

1. targets — the selected assets' partitions the user asked for (``core/plan_targets.py``: keys and ``--from/--to``
   read as a time interval).
2. downstream closure (optional) — every partition that reads a target through the mappings, transitively.
3. skips — partitions another run holds (RUNNING) always, FRESH ones with ``only_stale`` (decided after the
   closure, so a fresh partition still carries its downstream in).
4. upstream check — a target reading a partition that has no value (never materialized, or failed with no earlier
   success, or being materialized for the first time by another run) and that this plan does not produce cannot
   run. Every such problem is collected and raised once. Reads through ``[all]`` are exempt: they take whatever
   partitions exist.
5. runs — targets grouped by (notebook, partition key), assets in cell order, ordered by their dependencies. Two
   notebooks feeding each other at one key would make the runs cyclic; those groups are split into one run per
   asset, which cannot cycle because assets do not.

Partitions are handled as index arrays aligned with ``report.keys(asset)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from notebook_orch.core.mappings import upstream_ranges
from notebook_orch.core.plan_targets import PartitionSelection, PlanError, check_names, key_interval, select_targets
from notebook_orch.core.pulled_in import Pull, PulledIn, explain_pulls, pulled_in_lines
from notebook_orch.core.run_order import order_units, unit_graph, units_on_cycles
from notebook_orch.core.specs import AllPartitions, DepSpec
from notebook_orch.core.staleness import STATUSES
from notebook_orch.core.status import Status

if TYPE_CHECKING:
    import numpy as np

    from notebook_orch.core.graph import AssetGraph
    from notebook_orch.core.staleness import StalenessReport

_FRESH, _MISSING, _FAILED, _RUNNING = (
    STATUSES.index(s) for s in (Status.FRESH, Status.MISSING, Status.FAILED, Status.RUNNING))


@dataclass(frozen=True)
class PlannedRun:
    """One notebook execution for one partition key: ``assets`` (in cell order) all at ``partition``."""

    notebook: str
    partition: str
    assets: tuple[str, ...]
    after: tuple[int, ...]  # indexes into RunPlan.runs that must succeed first


@dataclass(frozen=True)
class RunPlan:
    runs: tuple[PlannedRun, ...]
    targets: tuple[tuple[str, str], ...]  # every (asset, partition) to run, in run order
    skipped: tuple[tuple[str, str, str], ...]  # (asset, partition, why): "fresh" (only_stale) or "running"
    # Invalid assets the selection reached (e.g. downstream of ``x+``) that cannot run: (asset, its problem)
    left_out: tuple[tuple[str, str], ...] = ()
    # Upstream partitions outside what was asked that run because targets read them (core/pulled_in.py), in order
    pulled_in: tuple[PulledIn, ...] = ()

    def describe(self) -> str:
        """What ``--dry-run`` prints: one line per run that would start (numbered from 1), then what was skipped."""
        n, m = len(self.runs), len(self.targets)
        lines = [f"Would start {_plural(n, 'run')} for {_plural(m, 'asset partition')}:" if n else "Nothing to run."]
        for i, run in enumerate(self.runs, start=1):
            after = f"  (after {', '.join(str(j + 1) for j in run.after)})" if run.after else ""
            lines.append(f"  {i}. {run.notebook} [{run.partition}] {', '.join(run.assets)}{after}")
        if self.skipped:
            why = {w: sum(1 for s in self.skipped if s[2] == w) for w in ("fresh", "running")}
            lines.append("Skipped " + ", ".join(f"{c} {w}" for w, c in why.items() if c) + ".")
        lines.extend(pulled_in_lines(self.pulled_in))
        lines.extend(left_out_lines(self.left_out))
        return "\n".join(lines)


def left_out_lines(left_out: Sequence[tuple[str, str]]) -> list[str]:
    """One line per invalid asset a selection reached but no run can materialize, with why."""
    if not left_out:
        return []
    return [f"Left out {_plural(len(left_out), 'invalid asset')} the selection reaches (fix and materialize "
            "again; nbo validate lists every problem):", *(f"  {name}: {why}" for name, why in left_out)]


def plan_materialization(
    graph: AssetGraph,
    report: StalenessReport,
    *,
    selection: Sequence[str],
    partitions: PartitionSelection | None = None,
    downstream: bool = False,
    only_stale: bool = False,
) -> RunPlan:
    """Plan the runs that materialize ``selection`` (asset names, e.g. from ``graph.select``) at ``partitions``.

    Raises ``PlanError`` with every problem: unknown names, bad / path-like / out-of-range keys, a reversed range,
    upstream partitions that were never materialized and are not in the plan, assets with no notebook.
    """
    names = check_names(graph, selection)
    sources = [n for n in names if graph.spec(n).source_path is not None]
    if sources and len(sources) == len(names) and not downstream:
        raise PlanError([
            f"Asset {n!r} is an external source (--source {graph.spec(n).source_path!r}): it is observed, not run; "
            "the scheduler records a partition when its marker appears (nbo scheduler), then its readers can run."
            for n in sources])
    targets = select_targets(graph, report, names, partitions)
    targets, pulls = _close_upstream(graph, report, targets, set(names))
    if downstream:
        targets = _close_downstream(graph, report, targets)
    # Sources are never run: their readers need them observed (the upstream check below says which are not).
    targets = {n: idx for n, idx in targets.items() if graph.spec(n).source_path is None}
    kept, skipped = _apply_skips(report, targets, only_stale=only_stale)
    edges = {name: _upstream_edges(graph, report, name) for name in kept}
    problems = _upstream_problems(report, kept, edges, {name: graph.spec(name).trigger for name in kept})
    problems += [
        f"Asset {name!r} was declared outside a notebook, so there is no notebook to run for it; "
        "move its %%asset cell into a notebook of the project."
        for name in kept
        if graph.spec(name).notebook is None
    ]
    if problems:
        raise PlanError(problems)
    plan = _group_runs(graph, report, kept, edges, skipped)
    return replace(plan, pulled_in=explain_pulls(graph, report, pulls, kept))


# -- 1. targets ------------------------------------------------------------------------------------------------
# PlanError, PartitionSelection and the targets step live in core/plan_targets.py.

# -- 2. downstream closure -----------------------------------------------------------------------------------------
def _close_downstream(
    graph: AssetGraph, report: StalenessReport, targets: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    import numpy as np

    out = dict(targets)
    for name in graph.order:  # upstream first, so one pass reaches everything transitively
        idx = out.get(name)
        if idx is None or len(idx) == 0:
            continue
        for down, readers in report.readers(name, idx).items():
            if len(readers):
                have = out.get(down)
                out[down] = readers.astype(np.int64) if have is None else np.union1d(have, readers)
    return {name: out[name] for name in graph.order if name in out}


def _close_upstream(
    graph: AssetGraph, report: StalenessReport, targets: dict[str, np.ndarray], selected: set[str]
) -> tuple[dict[str, np.ndarray], list[Pull]]:
    """Add the partitions of selected upstream assets that targets read (``+monthly`` for three days also runs
    every day of the month). ``[all]`` edges add nothing: they read whatever partitions exist. Each addition is
    recorded (which partitions, read by which, through which dependency) to say why they are in the plan."""
    import numpy as np

    from notebook_orch.core.specs import AllPartitions

    out = dict(targets)
    pulls: list[Pull] = []
    for name in reversed(graph.order):  # downstream first, so one pass reaches everything transitively
        idx = out.get(name)
        if idx is None or len(idx) == 0:
            continue
        for dep, lo, hi in _upstream_edges(graph, report, name):
            upstream = dep.asset
            if upstream not in selected or isinstance(dep.mapping, AllPartitions):
                continue
            spans = [np.arange(a, b) for a, b in zip(lo[idx].tolist(), hi[idx].tolist()) if b > a]
            if spans:
                need = np.unique(np.concatenate(spans)).astype(np.int64)
                have = out.get(upstream)
                added = need if have is None else np.setdiff1d(need, have)
                if len(added):
                    pulls.append((upstream, added, name, idx, dep, lo, hi))
                out[upstream] = need if have is None else np.union1d(have, need)
    return {name: out[name] for name in graph.order if name in out}, pulls


# -- 3. skips ------------------------------------------------------------------------------------------------------
def _apply_skips(
    report: StalenessReport, targets: dict[str, np.ndarray], *, only_stale: bool
) -> tuple[dict[str, np.ndarray], list[tuple[str, str, str]]]:
    kept: dict[str, np.ndarray] = {}
    skipped: list[tuple[str, str, str]] = []
    for name, idx in targets.items():
        codes = report.status_codes(name)[idx]
        keys = report.keys(name)
        drop = codes == _RUNNING
        if only_stale:
            drop |= codes == _FRESH
        for i, code in zip(idx[drop].tolist(), codes[drop].tolist()):
            skipped.append((name, keys[i], "running" if code == _RUNNING else "fresh"))
        if (~drop).any():
            kept[name] = idx[~drop]
    return kept, skipped


# -- 4. upstream check ---------------------------------------------------------------------------------------------
_Edge = tuple[DepSpec, Any, Any]  # (dependency, lo, hi): partition i reads upstream lo[i] .. hi[i]-1


def _upstream_edges(graph: AssetGraph, report: StalenessReport, name: str) -> list[_Edge]:
    spec = graph.spec(name)
    n = len(report.keys(name))
    return [
        (dep, *upstream_ranges(spec.partitions, graph.spec(dep.asset).partitions, dep.mapping, n,
                               len(report.keys(dep.asset))))
        for dep in spec.deps
    ]


def _no_value(report: StalenessReport, asset: str) -> tuple[np.ndarray, np.ndarray]:
    """Partitions with no value to read: (never materialized or failed with no earlier success, being produced by
    another run with no earlier value)."""
    codes = report.status_codes(asset)
    keys = report.keys(asset)
    missing, running = codes == _MISSING, codes == _RUNNING
    for q in (codes == _FAILED).nonzero()[0].tolist():
        missing[q] = report.latest_materialization_id(asset, keys[q]) is None
    for q in running.nonzero()[0].tolist():
        running[q] = report.latest_materialization_id(asset, keys[q]) is None
    return missing, running


def _upstream_problems(
    report: StalenessReport, kept: dict[str, np.ndarray], edges: dict[str, list[_Edge]],
    triggers: dict[str, str | None],
) -> list[str]:
    """Targets reading a partition that has no value and that this plan does not produce. With a ``--trigger``,
    only the inputs it requires must have one (``b`` of 'a | b' may be absent: the cell gets None, core/reads.py),
    and the expression must hold on the inputs that have one."""
    from notebook_orch.core.triggers import parse_trigger, required_deps

    problems: list[str] = []
    unusable: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def no_value(up: str) -> tuple[np.ndarray, np.ndarray]:
        if up not in unusable:
            missing, running = _no_value(report, up)
            if up in kept:
                missing[kept[up]] = running[kept[up]] = False
            unusable[up] = missing, running
        return unusable[up]

    for name, idx in kept.items():
        trigger = triggers.get(name)
        expr = parse_trigger(trigger, asset=name) if trigger else None
        required = required_deps(expr, [d.asset for d, _, _ in edges[name]]) if expr is not None else None
        if expr is not None:
            problems += _trigger_unmet(report, name, idx, expr, trigger, edges[name], no_value, required)
        for dep, lo, hi in edges[name]:
            if isinstance(dep.mapping, AllPartitions):
                continue  # reads whatever partitions exist
            up = dep.asset
            if required is not None and up not in required:
                continue
            missing, running = no_value(up)
            found = _reads_of(idx, lo, hi, missing)
            if found is not None:
                hit, upstream = found
                problems.append(
                    f"{name}[{_spans(report.keys(name), hit)}] reads {up}[{_spans(report.keys(up), upstream)}], "
                    f"which {'has' if len(upstream) == 1 else 'have'} never been materialized; materialize it first, "
                    f"or add it to the selection (e.g. '+{name}')."
                )
            found = _reads_of(idx, lo, hi, running)
            if found is not None:
                hit, upstream = found
                problems.append(
                    f"{name}[{_spans(report.keys(name), hit)}] reads {up}[{_spans(report.keys(up), upstream)}], "
                    "which another run is materializing for the first time; wait for it to finish (nbo runs), "
                    "then plan again."
                )
    return problems


def _trigger_unmet(report: StalenessReport, name: str, idx: np.ndarray, expr: Any, trigger: str,
                   edges: list[_Edge], no_value: Any, required: set[str]) -> list[str]:
    """Targets whose ``--trigger`` is false on the inputs that have a value (a required input with none is said
    by the caller, once)."""
    import numpy as np


    has: dict[str, np.ndarray] = {}
    for dep, lo, hi in edges:
        if isinstance(dep.mapping, AllPartitions):
            has[dep.asset] = np.ones(len(idx), dtype=bool)
            continue
        missing, running = no_value(dep.asset)
        prefix = np.concatenate(([0], np.cumsum(missing | running)))
        has[dep.asset] = prefix[hi[idx]] == prefix[lo[idx]]
    met = _evaluate_arrays(expr, has, len(idx))
    for r in required:
        met |= ~has[r]
    bad = idx[~met]
    if len(bad) == 0:
        return []
    return [f"{name}[{_spans(report.keys(name), bad)}]: its --trigger {trigger!r} is not met by what is "
            f"materialized (none of the inputs it needs has a value for these partitions); materialize them "
            f"first, or add them to the selection (e.g. '+{name}')."]


def _evaluate_arrays(expr: Any, has: dict[str, np.ndarray], n: int) -> np.ndarray:
    import numpy as np

    from notebook_orch.core.triggers import And, Name

    if isinstance(expr, Name):
        return has.get(expr.asset, np.zeros(n, dtype=bool))
    parts = [_evaluate_arrays(p, has, n) for p in expr.parts]
    return np.logical_and.reduce(parts) if isinstance(expr, And) else np.logical_or.reduce(parts)


def _reads_of(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray, bad: np.ndarray) -> tuple[Any, Any] | None:
    """(targets reading a ``bad`` upstream partition, those upstream partitions), or None when there are none."""
    import numpy as np

    prefix = np.concatenate(([0], np.cumsum(bad)))
    hit = idx[prefix[hi[idx]] > prefix[lo[idx]]]
    if len(hit) == 0:
        return None
    # The upstream partitions the hit targets read: a difference array over their ranges.
    cover = np.zeros(len(bad) + 1, dtype=np.int64)
    np.add.at(cover, lo[hit], 1)
    np.add.at(cover, hi[hit], -1)
    return hit, np.nonzero((np.cumsum(cover)[:-1] > 0) & bad)[0]


def _spans(keys: tuple[str, ...], idx: Any) -> str:
    """Every index named: runs of three or more consecutive partitions written ``first..last``."""
    parts: list[str] = []
    items = [int(i) for i in idx]
    start = 0
    for pos in range(1, len(items) + 1):
        if pos == len(items) or items[pos] != items[pos - 1] + 1:
            run = items[start:pos]
            if len(run) >= 3:
                parts.append(f"{keys[run[0]]}..{keys[run[-1]]}")
            else:
                parts.extend(keys[i] for i in run)
            start = pos
    return ", ".join(parts)


# -- 5. runs (their dependencies and order: core/run_order.py) ------------------------------------------------------

def _group_runs(
    graph: AssetGraph,
    report: StalenessReport,
    kept: dict[str, np.ndarray],
    edges: dict[str, list[_Edge]],
    skipped: list[tuple[str, str, str]],
) -> RunPlan:
    units, deps = unit_graph(graph, report, kept, edges, set())
    cyclic = units_on_cycles(deps)
    if cyclic:
        # Notebooks feeding each other at one key: run those groups asset by asset. One pass is enough: a cycle
        # left afterwards would have to pass through a group that was on no cycle before.
        units, deps = unit_graph(graph, report, kept, edges, {(u[0], u[1]) for u in cyclic})
    order = order_units(graph, report, units, deps)
    position = {u: i for i, u in enumerate(order)}
    runs = tuple(
        PlannedRun(u[0], u[1], tuple(units[u]), tuple(sorted(position[d] for d in deps[u]))) for u in order
    )
    targets = tuple((a, run.partition) for run in runs for a in run.assets)
    return RunPlan(runs, targets, tuple(skipped))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


__all__ = ["PartitionSelection", "PlanError", "PlannedRun", "RunPlan", "key_interval", "plan_materialization"]
