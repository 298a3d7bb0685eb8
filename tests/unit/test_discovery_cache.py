"""Discovery remembers each notebook's findings by content: same report with or without the cache, an edited
notebook parsed again, a damaged or foreign cache ignored, never a value that would come back different."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

import notebook_orch.discovery as discovery
from notebook_orch.discovery import discover
from notebook_orch.discovery_cache import DiscoveryCache, NotebookFindings, content_key
from notebook_orch.project import Project


def _notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def _project(root: Path) -> Path:
    (root / "pyproject.toml").write_text('[tool.notebook_orch]\nnotebooks = "notebooks"\n')
    _notebook(root / "notebooks" / "a.ipynb", [
        "import math\nFACTOR = 3",
        "def helper(x):\n    return x * FACTOR",
        "%%asset raw --partitions daily:2013-01-01..2013-01-31 --check 'len(raw) > 0' --sla 09:30 --retries 2\n"
        "raw = [helper(1)]",
        "%%asset clean --deps raw[-6:0] --partitions daily:2013-01-01..2013-01-31 --io json\n"
        "clean = raw",
        "%%asset report --deps clean[all],raw[-1] --owner 'Ann Lee' --description 'the $ report'\nreport = len(clean)",
    ])
    _notebook(root / "notebooks" / "sub" / "b.ipynb", [
        "%%asset regions --partitions static:us,eu --schedule '0 6 * * *' --auto\nregions = 1",
        "%%asset broken --deps nope[x]\nbroken = 1",  # a bad declaration: a problem, cached too
        "%%asset forgot\nx = 1",  # never assigns its name: a problem of the notebook
    ])
    return root


def _same(a: discovery.DiscoveryReport, b: discovery.DiscoveryReport) -> None:
    assert a.specs == b.specs
    assert [(s.source, s.code_source) for s in a.specs] == [(s.source, s.code_source) for s in b.specs]
    assert a.problems == b.problems
    assert a.notebooks == b.notebooks
    assert dict(a.helpers) == dict(b.helpers)


def test_cached_discovery_gives_the_same_report_without_parsing_again(tmp_path, monkeypatch):
    root = _project(tmp_path)
    cache = tmp_path / ".notebook_orch" / "cache" / "discovery.json"
    plain = discover(root / "notebooks", root=root)
    _same(plain, discover(root / "notebooks", root=root, cache=cache))
    assert not (tmp_path / ".notebook_orch").exists()  # a project nothing ran in is left untouched
    (tmp_path / ".notebook_orch").mkdir()
    first = discover(root / "notebooks", root=root, cache=cache)
    _same(plain, first)
    assert cache.is_file()
    assert {s.name for s in plain.specs} == {"raw", "clean", "report", "regions", "forgot"}
    assert any(p.asset == "broken" for p in plain.problems)

    def no_parsing(*args, **kwargs):
        raise AssertionError("an unchanged notebook was parsed again")

    monkeypatch.setattr(discovery, "assets_in_cells", no_parsing)
    _same(plain, discover(root / "notebooks", root=root, cache=cache))


def test_an_edited_notebook_is_parsed_again_and_the_others_are_not(tmp_path, monkeypatch):
    root = _project(tmp_path)
    cache = tmp_path / "cache.json"
    discover(root / "notebooks", root=root, cache=cache)
    nb_a = root / "notebooks" / "a.ipynb"
    stat = nb_a.stat()
    text = nb_a.read_text().replace("FACTOR = 3", "FACTOR = 4")  # same size, and the same mtime put back
    nb_a.write_text(text)
    os.utime(nb_a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    parsed = []
    real = discovery.assets_in_cells
    monkeypatch.setattr(discovery, "assets_in_cells", lambda cells, notebook: parsed.append(notebook)
                        or real(cells, notebook=notebook))
    found = discover(root / "notebooks", root=root, cache=cache)
    assert parsed == ["notebooks/a.ipynb"]
    _same(discovery.discover(root / "notebooks", root=root), found)
    before = {s.name: s.code_version for s in discover(root / "notebooks", root=root).specs}
    assert before["raw"] == {s.name: s.code_version for s in found.specs}["raw"]


def test_damaged_foreign_or_unwritable_caches_are_ignored(tmp_path):
    root = _project(tmp_path)
    plain = discover(root / "notebooks", root=root)
    cache = tmp_path / "cache.json"
    for content in (b"{not json", b"[]", json.dumps({"format": 1, "stamp": "other", "notebooks": {}}).encode(),
                    b'{"format": 1, "stamp": "x", "notebooks": {"notebooks/a.ipynb": {"key": 1}}}'):
        cache.write_bytes(content)
        _same(plain, discover(root / "notebooks", root=root, cache=cache))
        assert json.loads(cache.read_text())["format"] == 3  # rewritten whole
    # An entry whose key matches but whose content was tampered with so that it no longer decodes
    data = json.loads(cache.read_text())
    for entry in data["notebooks"].values():
        for spec in entry["specs"]:
            spec["deps"] = ["not a dep ["]
    cache.write_text(json.dumps(data))
    _same(plain, discover(root / "notebooks", root=root, cache=cache))
    # A cache path that cannot be written (its folder is a file): discovery still works
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    _same(plain, discover(root / "notebooks", root=root, cache=blocker / "cache.json"))


def test_removed_notebooks_drop_out_of_the_cache(tmp_path):
    root = _project(tmp_path)
    cache = tmp_path / "cache.json"
    discover(root / "notebooks", root=root, cache=cache)
    assert set(json.loads(cache.read_text())["notebooks"]) == {"notebooks/a.ipynb", "notebooks/sub/b.ipynb"}
    (root / "notebooks" / "sub" / "b.ipynb").unlink()
    found = discover(root / "notebooks", root=root, cache=cache)
    assert {s.name for s in found.specs} == {"raw", "clean", "report"}
    assert set(json.loads(cache.read_text())["notebooks"]) == {"notebooks/a.ipynb"}


def test_a_value_the_codec_cannot_carry_is_not_cached(tmp_path):
    root = _project(tmp_path)
    found = discover(root / "notebooks", root=root)
    spec = next(s for s in found.specs if s.name == "raw")
    odd = NotebookFindings((replace(spec, owner=b"bytes"),), (), {})  # no JSON form: never cached
    cache = DiscoveryCache(tmp_path / "cache.json")
    cache.put("x.ipynb", content_key(b"x"), odd)
    assert cache.get("x.ipynb", content_key(b"x")) is None
    cache.save()
    assert not (tmp_path / "cache.json").exists()  # nothing changed: nothing written


def test_project_status_reads_use_the_cache_under_the_project_folder(tmp_path):
    root = _project(tmp_path)
    (root / ".notebook_orch").mkdir()  # the store's folder, made by the first run
    with Project(root) as project:
        names = set(project.graph.names)
        assert project.discovery_cache_path == root / ".notebook_orch" / "cache" / "discovery.json"
        assert project.discovery_cache_path.is_file()
    with Project(root) as again:
        assert set(again.graph.names) == names


@pytest.mark.parametrize("line", ["--deps 'a b'", "--description \"it's\""])
def test_quoted_options_round_trip(tmp_path, line):
    _notebook(tmp_path / "nb" / "q.ipynb", [f"%%asset q {line}\nq = 1"])
    plain = discover(tmp_path / "nb")
    cache = tmp_path / "c.json"
    discover(tmp_path / "nb", cache=cache)
    _same(plain, discover(tmp_path / "nb", cache=cache))


def test_every_example_notebook_is_cached(tmp_path):
    """Every declaration the examples use survives the cache (a new kind of spec value the codec cannot carry
    would silently turn the cache off for its notebook)."""
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    cache = tmp_path / "cache.json"
    plain = discover(folder)
    _same(plain, discover(folder, cache=cache))
    assert set(json.loads(cache.read_text())["notebooks"]) == set(plain.notebooks)
    _same(plain, discover(folder, cache=cache))
