"""Fixtures for the real-browser layer: one example project, one JupyterLab and one Chromium per module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import CHROMIUM, Lab, make_project, nbo, open_browser


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project with raw and clean materialized for every day (rolling and summary missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    pytest.importorskip("playwright")
    root = make_project(tmp_path_factory.mktemp("example"))
    nbo(root, "materialize", "raw,clean")
    return root


@pytest.fixture(scope="module")
def lab(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    server = Lab(example, tmp_path_factory.mktemp("jupyter"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium")
    pw, ctx = open_browser(profile)
    page = ctx.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.console_log = console
    yield page
    ctx.close()
    pw.stop()
    shutil.rmtree(profile, ignore_errors=True)
