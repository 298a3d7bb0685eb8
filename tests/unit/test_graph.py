"""The graph: collected validation, order, closures, selection."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.graph import AssetGraph, build_graph, validate_specs
from notebook_orch.core.specs import parse_declaration
from notebook_orch.errors import DeclarationError, ProjectInvalid


def spec(line, nb="nb.ipynb", cell=0):
    return parse_declaration(line, notebook=nb, cell=cell)


def test_every_problem_reported_together():
    specs = [
        spec("a", "one.ipynb", 1),
        spec("a", "two.ipynb", 2),
        spec("b --deps sales_raw", "two.ipynb", 3),
        spec("sales_raw_v2"),
        spec("c --deps d"),
        spec("d --deps c"),
        spec("m --deps a[-1]"),
    ]
    with pytest.raises(ProjectInvalid) as info:
        build_graph(specs)
    messages = [str(p) for p in info.value.problems]
    assert len(messages) == 4
    assert "defined twice: in one.ipynb, cell 2 and in two.ipynb, cell 3" in messages[0]  # counted from 1
    assert messages[1] == ("two.ipynb, cell 4: Asset 'b' depends on 'sales_raw', which no asset declares; fix "
                           "--deps, or declare 'sales_raw' in a notebook. Did you mean 'sales_raw_v2'?")
    assert "does not fit" in messages[2] and "'a[-1]'" in messages[2]
    assert "Dependency cycle: " in messages[3] and ("c -> d -> c" in messages[3] or "d -> c -> d" in messages[3])


def test_order_closure_and_selection():
    g = build_graph([spec("raw"), spec("clean --deps raw"), spec("report --deps clean"), spec("other --deps raw"),
                     spec("lonely")])
    assert g.order == ("lonely", "raw", "clean", "other", "report")
    assert g.ancestors(["report"]) == {"clean", "raw"}
    assert g.descendants(["raw"]) == {"clean", "other", "report"}
    assert g.select("clean") == ["clean"]
    assert g.select("+clean") == ["raw", "clean"]
    assert g.select("clean+") == ["clean", "report"]
    assert g.select("+clean+") == ["raw", "clean", "report"]
    assert g.select("*") == list(g.order)
    assert g.select("lonely, report") == ["lonely", "report"]
    with pytest.raises(DeclarationError, match="No asset named 'cleen'.*Did you mean 'clean'"):
        g.select("cleen+")


@given(st.lists(st.lists(st.integers(0, 29), max_size=4), min_size=1, max_size=30))
def test_random_dags_order_respects_every_edge(raw_deps):
    # Only edges to earlier indexes: always a DAG.
    specs = []
    for i, deps in enumerate(raw_deps):
        names = sorted({f"a{j}" for j in deps if j < i})
        specs.append(replace(spec(f"a{i}" + (f" --deps {','.join(names)}" if names else ""))))
    assert validate_specs(specs) == []
    g = AssetGraph(specs)
    pos = g.position
    for s in specs:
        for d in s.deps:
            assert pos[d.asset] < pos[s.name]
    for s in specs:
        assert all(s.name in g.descendants([a]) for a in g.ancestors([s.name]))


def test_upstream_cell_must_come_first_in_the_same_notebook():
    problems = validate_specs([spec("b --deps a", "nb.ipynb", 2), spec("a", "nb.ipynb", 5)])
    assert [str(p) for p in problems] == [
        "nb.ipynb, cell 3: Asset 'b' reads 'a', which is defined further down the same notebook (cell 6); a "
        "notebook runs top to bottom, so move 'a''s cell above this one."
    ]
