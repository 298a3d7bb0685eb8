"""A broken declaration breaks only itself and what is downstream of it: ``build_valid_graph`` (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.core.graph import build_valid_graph, validate_specs
from notebook_orch.core.specs import parse_declaration
from notebook_orch.errors import DeclarationError, Problem


def spec(line: str, nb: str = "nb.ipynb", cell: int = 0):
    return parse_declaration(line, notebook=nb, cell=cell)


DAILY = "--partitions daily:2024-01-01..2024-01-31"


def test_unknown_dependency_excludes_it_and_its_downstream_only():
    g = build_valid_graph([
        spec("raw", "a.ipynb", 0), spec("clean --deps raw", "a.ipynb", 1),
        spec("bad --deps nope", "scratch.ipynb", 0), spec("worse --deps bad,raw", "scratch.ipynb", 1),
        spec("worst --deps worse", "scratch.ipynb", 2),
    ])
    assert g.names == ("raw", "clean")
    assert sorted(g.invalid) == ["bad", "worse", "worst"]
    assert [p.message for p in g.invalid["bad"].problems] == [
        "Asset 'bad' depends on 'nope', which no asset declares; fix --deps, or declare 'nope' in a notebook."]
    assert g.invalid["bad"].roots == ("bad",) and g.invalid["bad"].invalid_deps == ()
    worse = g.invalid["worse"]
    assert worse.invalid_deps == ("bad",) and worse.roots == ("bad",)
    assert worse.problems == (Problem(
        "Asset 'worse' depends on invalid 'bad'; it is left out until that declaration is fixed (nbo validate "
        "lists the problem).", "scratch.ipynb", 1, "worse"),)
    assert g.invalid["worst"].problems[0].message.startswith(
        "Asset 'worst' depends on invalid 'worse' (because of 'bad');")
    assert g.invalid_problems()["worst"] == list(g.invalid["worst"].problems)
    # the valid part works as before
    assert g.select("raw+") == ["raw", "clean"] and g.descendants(["raw"]) == {"clean"}


def test_every_member_of_a_cycle_is_invalid_with_the_cycle_named():
    g = build_valid_graph([spec("src"), spec("c1 --deps c3,src", "1.ipynb", 1), spec("c2 --deps c1", "2.ipynb", 2),
                           spec("c3 --deps c2", "3.ipynb", 3), spec("after --deps c2"), spec("ok --deps src")])
    assert g.names == ("src", "ok")
    assert sorted(g.invalid) == ["after", "c1", "c2", "c3"]
    for member in ("c1", "c2", "c3"):
        (problem,) = g.invalid[member].problems
        assert problem.message.startswith("Dependency cycle: c1 -> c2 -> c3 -> c1") or "c2 -> c3 -> c1 -> c2" in \
            problem.message or "c3 -> c1 -> c2 -> c3" in problem.message
        assert problem.asset == member and problem.cell == g.invalid[member].spec.cell_index
    assert g.invalid["after"].invalid_deps == ("c2",)


def test_two_separate_cycles_are_both_reported():
    problems = validate_specs([spec("a --deps b"), spec("b --deps a"), spec("x --deps y"), spec("y --deps x")])
    assert len(problems) == 2 and all(p.message.startswith("Dependency cycle: ") for p in problems)
    assert {"a", "b"} <= set(problems[0].message.split()) or {"a", "b"} <= set(problems[1].message.split())


def test_both_duplicates_are_excluded_and_say_so():
    g = build_valid_graph([spec("raw", "one.ipynb", 1), spec("raw", "two.ipynb", 2), spec("down --deps raw"),
                           spec("fine")])
    assert g.names == ("fine",)
    bad = g.invalid["raw"]
    assert bad.declared_twice and len(bad.specs) == 2
    assert "defined twice: in one.ipynb, cell 2 and in two.ipynb, cell 3" in bad.describe()
    assert g.invalid["down"].invalid_deps == ("raw",)


def test_a_mapping_that_does_not_fit_excludes_the_reader():
    g = build_valid_graph([spec("config"), spec(f"daily --deps config[-1] {DAILY}")])
    assert g.names == ("config",)
    assert "does not fit" in g.invalid["daily"].describe()


def test_problems_found_by_discovery_exclude_the_named_asset():
    bad_line = Problem("%%asset: unrecognized arguments: --depz x.", "s.ipynb", 3, "typo")
    unreadable = Problem("The notebook is not valid JSON.", "broken.ipynb")
    g = build_valid_graph([spec("raw", "a.ipynb"), spec("reads_typo --deps typo", "a.ipynb", 1)],
                          problems=[bad_line, unreadable])
    assert g.names == ("raw",)
    assert g.invalid["typo"].problems == (bad_line,) and g.invalid["typo"].spec is None
    assert (g.invalid["typo"].notebook, g.invalid["typo"].cell_index) == ("s.ipynb", 3)
    assert g.invalid["reads_typo"].invalid_deps == ("typo",)
    assert g.other_problems == (unreadable,)


def test_a_line_that_does_not_parse_and_one_that_does_with_the_same_name_are_a_duplicate():
    g = build_valid_graph([spec("raw", "a.ipynb", 0)],
                          problems=[Problem("%%asset: bad option.", "b.ipynb", 4, "raw")])
    assert "raw" not in g and g.invalid["raw"].declared_twice


def test_selecting_an_invalid_asset_is_refused_naming_its_problem():
    g = build_valid_graph([spec("raw"), spec("bad --deps nope", "s.ipynb", 2)])
    with pytest.raises(DeclarationError) as info:
        g.select("bad")
    assert str(info.value) == (
        "Asset 'bad' is invalid, so it cannot be used until its declaration is fixed: s.ipynb, cell 3: Asset 'bad' "
        "depends on 'nope', which no asset declares; fix --deps, or declare 'nope' in a notebook.")
    with pytest.raises(DeclarationError, match="Did you mean 'bad'"):
        g.select("bda")


def test_selection_for_display_reaches_invalid_assets():
    g = build_valid_graph([spec("raw"), spec("clean --deps raw"), spec("bad --deps clean,nope"),
                           spec("worse --deps bad"), spec("other")])
    assert g.select("*", include_invalid=True) == ["other", "raw", "clean", "bad", "worse"]
    assert g.select("raw+", include_invalid=True) == ["raw", "clean", "bad", "worse"]
    assert g.select("bad+", include_invalid=True) == ["bad", "worse"]
    assert g.select("+worse", include_invalid=True) == ["raw", "clean", "bad", "worse"]
    assert g.select("raw+") == ["raw", "clean"]


@given(st.lists(st.lists(st.integers(0, 14), max_size=3), min_size=1, max_size=15),
       st.sets(st.integers(0, 14), max_size=3))
def test_random_graphs_exclude_exactly_the_broken_and_their_downstream(raw_deps, broken):
    """Any deps (cycles included) plus some deps on unknown names: the valid graph is exactly the assets that
    reach no cycle, no unknown name and no invalid asset upstream; every asset is either valid or invalid."""
    specs = []
    for i, deps in enumerate(raw_deps):
        names = sorted({f"a{j}" for j in deps if j < len(raw_deps) and j != i} | ({"ghost"} if i in broken else set()))
        specs.append(spec(f"a{i}" + (f" --deps {','.join(names)}" if names else ""), f"n{i}.ipynb", 0))
    g = build_valid_graph(specs)
    deps_of = {s.name: set(s.dep_names) for s in specs}

    def reaches_trouble(name, path=()):
        if name == "ghost" or name in path:
            return True
        return any(reaches_trouble(d, (*path, name)) for d in deps_of[name])

    assert set(g.names) | set(g.invalid) == set(deps_of) and not set(g.names) & set(g.invalid)
    assert set(g.invalid) == {n for n in deps_of if reaches_trouble(n)}
    assert validate_specs(g.specs) == []
    for name, bad in g.invalid.items():
        assert bad.problems and all(p.asset == name for p in bad.problems)
