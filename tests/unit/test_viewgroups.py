"""Collapsed notebook groups (core.viewgroups): which edges stand for a collapsed notebook's assets."""

from __future__ import annotations

from notebook_orch.core.viewgroups import collapsed_edges, hidden_by


def view() -> dict:
    nodes = [{"id": "a", "group": "nb:1"}, {"id": "b", "group": "nb:1"}, {"id": "c", "group": "nb:2"},
             {"id": "d", "group": "nb:2"}, {"id": "e", "group": None}]
    edges = [("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("c", "d"), ("d", "e")]
    return {"nodes": nodes, "edges": [{"id": f"{s}->{t}", "source": s, "target": t, "label": ""} for s, t in edges]}


def test_nothing_collapsed_adds_no_edge():
    assert collapsed_edges(view(), []) == []
    assert hidden_by(view(), []) == set()


def test_one_collapsed_notebook_stands_for_its_assets_edges():
    out = [(e["source"], e["target"], e["count"], e["label"]) for e in collapsed_edges(view(), ["nb:1"])]
    assert out == [("nb:1", "c", 2, "2 edges"), ("nb:1", "d", 1, "")]  # a->b inside it disappears
    assert hidden_by(view(), ["nb:1"]) == {"a", "b"}


def test_two_collapsed_notebooks_are_joined_once():
    out = [(e["source"], e["target"], e["count"]) for e in collapsed_edges(view(), ["nb:1", "nb:2"])]
    assert out == [("nb:1", "nb:2", 3), ("nb:2", "e", 1)]
    assert {e["classes"] for e in collapsed_edges(view(), ["nb:1", "nb:2"])} == {"meta"}
