"""Benchmark group ``sla``: impact analysis over a large graph (pure), one daemon SLA pass when a day's deadlines
fall for 200 assets (real SQLite store), and ``nbo metrics`` over 2,000 triggered runs (real SQLite store).

Run: ``PYTHONPATH=. python benchmarks/bench_sla.py`` (or ``python benchmarks/run.py sla``).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import median_seconds, report

from notebook_orch.core.graph import build_graph
from notebook_orch.core.impact import project_impact
from notebook_orch.core.specs import parse_declaration
from notebook_orch.core.status import Status

NOW = datetime(2024, 9, 27, 12)  # 1,000 daily partitions since 2022-01-01 have ended


def impact_graph(width: int = 100, depth: int = 10):
    """``depth`` layers of ``width`` daily assets; each reads two of the layer above (one through [-6:0]); the last
    layer rolls up monthly, and one report reads the first layer [all]."""
    lines = [f"l0_{i} --partitions daily:2022-01-01 --sla 06:00" for i in range(width)]
    for d in range(1, depth):
        for i in range(width):
            grain = "monthly:2022-01" if d == depth - 1 else "daily:2022-01-01"
            window = "" if d == depth - 1 else "[-6:0]"
            lines.append(f"l{d}_{i} --deps l{d - 1}_{i},l{d - 1}_{(i + 1) % width}{window} --partitions {grain} "
                         "--sla '+2h'")
    lines.append("report --deps l0_0[all]")
    return build_graph([parse_declaration(line) for line in lines])


def bench_impact() -> None:
    graph = impact_graph()
    specs = {n: graph.spec(n) for n in graph.names}
    order = graph.order
    durations = {n: 300.0 for n in graph.names}
    out: list = []

    def run() -> None:
        out[:] = [project_impact(specs, order, ("l0_0", "2024-09-26"), delay=timedelta(hours=2),
                                 now=NOW - timedelta(hours=11, minutes=30), durations=durations,
                                 status_of=lambda a, k: Status.MISSING)]

    report("impact_1001_assets", median_seconds(run, repeat=3), "s")
    r = out[0]
    print(f"  ({len(r.downstream):,} downstream partitions of {len({n.asset for n in r.downstream})} assets, "
          f"{len(r.sla_misses)} SLA misses caused)")


def _project(root: Path, n: int) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    (root / "notebooks").mkdir(parents=True)
    nb = new_notebook()
    nb.cells = [new_code_cell("%%asset raw --partitions daily:2024-01-01\nraw = 1")]
    nb.cells += [new_code_cell(f"%%asset s{i} --deps raw --partitions daily:2024-01-01 --sla 06:00 --auto\n"
                               f"s{i} = raw") for i in range(n)]
    nbformat.write(nb, root / "notebooks" / "many.ipynb")


def bench_store(n: int = 200) -> None:
    from notebook_orch import Project
    from notebook_orch.scheduler.sla_views import metrics
    from notebook_orch.scheduler.sla_watch import SlaWatch
    from notebook_orch.store.records import ConsumedInput, NewMaterialization

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        _project(root, n)
        with Project(root) as p:
            code = {s.name: s.code_version for s in p.graph.specs}
            # 10 days: raw at 00:10, every s_i triggered at 00:20 (half of day 10 never comes).
            for day in range(1, 11):
                key = f"2024-01-{day:02d}"
                t = datetime(2024, 1, day + 1, 0, 10)
                run = p.store.start_run(notebook="nb", targets=[("raw", key)], kind="manual", now=t)
                p.store.finalize_success(run.run_id, [NewMaterialization(asset="raw", partition=key, code_version=code[
                    "raw"], data_version=f"raw{key}")], now=t + timedelta(minutes=5))
                m = p.store.latest_materialization("raw", key)
                for i in range(n if day < 10 else n // 2):
                    a = f"s{i}"
                    run = p.store.start_run(notebook="nb", targets=[(a, key)], kind="trigger",
                                            now=t + timedelta(minutes=10))
                    p.store.finalize_success(run.run_id, [NewMaterialization(
                        asset=a, partition=key, code_version=code[a], data_version=f"{a}{key}", deps_signature="raw",
                        inputs=(ConsumedInput("raw", key, m.id, m.data_version, m.id),))],
                        now=t + timedelta(minutes=15))
            watch = SlaWatch(p)
            watch.run_once(datetime(2024, 1, 10, 12, tzinfo=timezone.utc))  # watched from here
            got: list = []

            def one_pass() -> None:
                got[:] = [watch.run_once(datetime(2024, 1, 11, 7, tzinfo=timezone.utc))]

            logging.getLogger("notebook_orch.scheduler").setLevel(logging.ERROR)  # 100 miss lines are not the figure
            report(f"sla_pass_{n}_deadlines", median_seconds(one_pass, repeat=1), "s")
            print(f"  ({got[0].judged} verdicts, {len(got[0].missed)} misses recorded with their events and alerts)")
            quiet = median_seconds(lambda: watch.run_once(datetime(2024, 1, 11, 7, 1, tzinfo=timezone.utc)),
                                   repeat=5)
            report("sla_pass_nothing_due", quiet, "s")
            out: list = []

            def compute() -> None:
                out[:] = [metrics(p, since=timedelta(days=30), now=datetime(2024, 1, 12))]

            report(f"metrics_{len(p.store.sla.runs_since(datetime(2024, 1, 1)))}_runs",
                   median_seconds(compute, repeat=3), "s")


def run() -> None:
    bench_impact()
    bench_store()


main = run

if __name__ == "__main__":
    run()
