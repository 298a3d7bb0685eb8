"""The hostile corpus (tests/reliability/corpus): every file goes through the real ``nbo`` entry point in a project
beside a good notebook, and must get the message ``expected.json`` holds for it — naming the file (and the cell,
counted from 1) — with the expected exit code, no traceback, nothing stored changed and no user file deleted or
replaced. Notebooks: ``nbo validate`` lists the problem (exit 1) and ``nbo status`` still shows the good asset
(a broken file breaks only itself). Configurations: ``nbo status`` refuses before anything is opened (exit 2).
Store files: ``nbo status`` / ``nbo runs`` refuse to read them and leave them as they are.

tests/test_hostile_inputs.py keeps the cases that need more than a file (environment variables, symlinks, a
project folder that does not exist, API options).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from fuzz_support import snapshot

from notebook_orch.faces.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED: dict[str, dict] = {k: v for k, v in json.loads((CORPUS / "expected.json").read_text()).items()
                             if not k.startswith("_")}
GOOD = {"cells": [{"cell_type": "code", "id": "g", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": "%%asset good\ngood = 1"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
ENV = ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)


def test_the_corpus_is_complete() -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for p in CORPUS.glob("*/*") if p.is_file()}
    assert on_disk == set(EXPECTED), "every corpus file has an expectation, and every expectation a file"
    kinds = {k.split("/")[0] for k in EXPECTED}
    assert kinds == {"notebooks", "configs", "stores"} and len(EXPECTED) >= 60


def nbo(root: Path, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["-C", str(root), *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue() + err.getvalue()


def project(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A project with the good notebook and the corpus file in its place; returns (root, the placed file)."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "good.ipynb").write_text(json.dumps(GOOD))
    kind, filename = name.split("/")
    target = {"notebooks": root / "notebooks" / filename, "configs": root / "pyproject.toml",
              "stores": root / ".notebook_orch" / "store.db"}[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind != "stores":  # a project that has run before: its store holds a run that must stay as it is
        from notebook_orch.store import open_store

        with open_store(f"sqlite:///{root}/.notebook_orch/store.db") as store:
            run = store.start_run(notebook="notebooks/good.ipynb", targets=[("good", "unpartitioned")], kind="manual")
            store.finalize_failure(run.run_id, error="ValueError: boom")
    shutil.copyfile(CORPUS / name, target)
    if kind == "stores":
        # A store the corpus holds from an older schema version, but otherwise readable, is upgraded first — as the
        # first command after upgrading notebook_orch would do; what is checked is that commands change nothing.
        from notebook_orch.errors import NotebookOrchError
        from notebook_orch.store import open_store

        try:
            open_store(f"sqlite:///{target}").close()
        except NotebookOrchError:
            pass
    return root, target


def check_message(text: str, expected: dict, root: Path) -> None:
    messages = expected["message"] if isinstance(expected["message"], list) else [expected["message"]]
    for part in messages:
        assert part in text, f"expected {part!r} in:\n{text}"
    for name in expected["names"]:
        assert name in text, f"expected the message to name {name!r}:\n{text}"
    assert "Traceback" not in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_hostile_file_gets_its_message_and_changes_nothing(tmp_path: Path, name: str) -> None:
    expected = EXPECTED[name]
    root, placed = project(tmp_path, name)
    inode = placed.stat().st_ino
    before = snapshot(root)
    commands = [c for c in ("validate", "status", "runs") if c in expected]
    for command in commands:
        code, text = nbo(root, command)
        assert code == expected[command], (command, code, text)
        if code != 0:
            check_message(text, expected, root)
    if name.startswith("notebooks/"):
        # A broken notebook breaks only its own assets: the good one is still listed.
        code, text = nbo(root, "status")
        assert code == 0 and "good" in text, text
        located = f"{expected['names'][0]}" + (f", {expected['names'][1]}" if len(expected["names"]) > 1 else "")
        code, text = nbo(root, "validate", "--json")
        assert code == 1 and any(p.startswith(located) for p in json.loads(text)["problems"]), text
    assert snapshot(root) == before, "nothing stored or written may change"
    assert placed.stat().st_ino == inode, "the user's file was replaced"
    assert sorted(os.listdir(root / "notebooks")) == sorted({"good.ipynb", placed.name} - {"pyproject.toml",
                                                                                          "store.db"})
