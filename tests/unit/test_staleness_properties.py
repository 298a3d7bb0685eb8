"""Properties over random graphs and event sequences (hypothesis).

* STALE means materializing clears it: right after materializing X[p] from what its upstream holds, X[p] has no
  cause of its own, and is FRESH when every upstream partition it read was FRESH.
* A materialized partition has the cause "upstream data changed" exactly when what it read differs from what its
  upstream holds now: a version that differs, or for ``[all]`` a partition that exists now and was not read.
* The incremental report (``apply`` after each event) equals a full recompute, with the consumed-versions lookup.
"""

from dataclasses import replace
from datetime import datetime

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from notebook_orch.core.graph import build_graph
from notebook_orch.core.mappings import upstream_ranges
from notebook_orch.core.specs import AllPartitions, parse_declaration
from notebook_orch.core.staleness import resolve_staleness
from notebook_orch.core.status import CauseKind, Status
from notebook_orch.testing import MemoryHistory

NOW = datetime(2014, 1, 1)
DAYS = "--partitions daily:2013-01-01..2013-01-03"
OWN = {CauseKind.CODE_CHANGED, CauseKind.DEPENDENCIES_CHANGED, CauseKind.UPSTREAM_DATA_CHANGED}


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 5))
    partitioned = [draw(st.booleans()) or i == 0 for i in range(n)]
    specs = []
    for i in range(n):
        deps = []
        for j in sorted(draw(st.sets(st.integers(0, i - 1), max_size=2)) if i else ()):
            if not partitioned[j]:
                deps.append(f"x{j}")
            elif not partitioned[i]:
                deps.append(f"x{j}[all]")
            else:
                deps.append(f"x{j}" + draw(st.sampled_from(["", "[-1]", "[-2:0]", "[all]"])))
        line = f"x{i}" + (f" --deps {','.join(deps)}" if deps else "") + (f" {DAYS}" if partitioned[i] else "")
        specs.append(replace(parse_declaration(line, notebook="nb.ipynb", cell=i + 1), code_version="c1"))
    return specs


event = st.tuples(
    st.sampled_from(["materialize"] * 4 + ["fail", "cancel", "run"]),
    st.integers(0, 4),  # asset (modulo the graph's size)
    st.integers(0, 2),  # partition (modulo the asset's count)
    st.sampled_from(["A", "B"]),  # data version: two values, so data reverts often
)


def reads(graph, h, name, p):
    """What a run of ``name[p]`` reads, as the kernel does; None when it would refuse (an input is missing)."""
    spec = graph.spec(name)
    n = len(spec.partitions.keys(now=NOW))
    out = []
    for dep in spec.deps:
        up = graph.spec(dep.asset)
        up_keys = up.partitions.keys(now=NOW)
        lo, hi = upstream_ranges(spec.partitions, up.partitions, dep.mapping, n, len(up_keys))
        wanted = [(dep.asset, up_keys[q]) for q in range(int(lo[p]), int(hi[p]))]
        there = [w for w in wanted if w in h.rows and h.rows[w]["materialization_id"] is not None]
        if isinstance(dep.mapping, AllPartitions):
            if wanted and not there:
                return None
        elif len(there) != len(wanted):
            return None
        out += there
    return out


def data_changed(graph, h, name, key):
    """The oracle: does what ``name[key]`` read differ from what is there now?"""
    row = h.rows.get((name, key))
    if row is None or row["materialization_id"] is None:
        return False
    read = {(u, k): v for u, k, v in h.reads[row["materialization_id"]]}
    if any(h.rows.get(w, {}).get("data_version") != v for w, v in read.items()):
        return True
    spec = graph.spec(name)
    for dep in spec.deps:
        if isinstance(dep.mapping, AllPartitions):
            up = graph.spec(dep.asset)
            for k in up.partitions.keys(now=NOW):
                there = h.rows.get((dep.asset, k), {}).get("materialization_id") is not None
                if there and (dep.asset, k) not in read:
                    return True
    return False


def fixed(*lines):
    return [replace(parse_declaration(line, notebook="nb.ipynb", cell=1), code_version="c1") for line in lines]


@given(graphs(), st.lists(event, min_size=1, max_size=40))
# Always tried: a value that reverts A -> B -> A under a reader, and an [all] reader of a partly built upstream.
@example(fixed(f"x0 {DAYS}", f"x1 --deps x0 {DAYS}"),
         [("materialize", 0, 0, "A"), ("materialize", 1, 0, "A"), ("materialize", 0, 0, "B"),
          ("materialize", 0, 0, "A"), ("materialize", 0, 1, "A")])
@example(fixed(f"x0 {DAYS}", "x1 --deps x0[all]"),
         [("materialize", 0, 1, "A"), ("materialize", 1, 0, "A"), ("fail", 0, 0, "A"), ("materialize", 0, 2, "B"),
          ("materialize", 1, 0, "A"), ("cancel", 1, 0, "A"), ("materialize", 0, 2, "A")])
def test_materializing_clears_stale_and_incremental_equals_full(specs, events):
    graph = build_graph(specs)
    h = MemoryHistory()
    rep = resolve_staleness(graph, h.snapshot(), now=NOW, consumed=h.consumed_versions)
    for kind, a, p, version in events:
        spec = specs[a % len(specs)]
        keys = spec.partitions.keys(now=NOW)
        key = keys[p % len(keys)]
        target = (spec.name, key)
        checked = False
        if kind == "materialize":
            inputs = reads(graph, h, spec.name, keys.index(key))
            if inputs is None:
                continue
            read_fresh = all(rep.status(u, k) == Status.FRESH for u, k in inputs)
            h.materialize(spec, key, data_version=version, inputs=inputs)
            checked = True
        elif kind in ("fail", "cancel"):
            h.fail(*target, status={"fail": "FAILED", "cancel": "CANCELED"}[kind])
        else:
            h.running = {} if h.running else {target: "run-1"}
        rep.apply(h.snapshot(only=[target]).assets if kind != "run" else {}, running=h.running)
        full = resolve_staleness(graph, h.snapshot(), now=NOW, consumed=h.consumed_versions)
        for name in graph.order:
            assert np.array_equal(full.status_codes(name), rep.status_codes(name)), name
            assert np.array_equal(full._states[name].causes, rep._states[name].causes), name
        for name in graph.order:
            for k in graph.spec(name).partitions.keys(now=NOW):
                kinds = [c.kind for c in full.explain(name, k).causes]
                assert (CauseKind.UPSTREAM_DATA_CHANGED in kinds) == data_changed(graph, h, name, k), (name, k, kinds)
        if checked:
            explained = full.explain(*target)
            assert not {c.kind for c in explained.causes} & OWN, explained
            if read_fresh and target not in h.running:
                assert explained.status == Status.FRESH, explained
