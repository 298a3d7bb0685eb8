"""The dask executor's wiring, without a cluster: registry, lazy import, config, a clear error without an address."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_importing_notebook_orch_and_its_registry_does_not_import_distributed() -> None:
    code = ("import sys, notebook_orch, notebook_orch.project\n"
            "from notebook_orch.engine.executors import default_registry\n"
            "assert 'dask' in default_registry().names()\n"
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_dask_executor_without_an_address_says_how_to_give_one() -> None:
    from notebook_orch.engine.executors import default_registry
    from notebook_orch.errors import NotebookOrchError

    with pytest.raises(NotebookOrchError, match=r"--address tcp://HOST:PORT.*dask_address"):
        default_registry().create("dask", workers=2)


def test_the_project_config_names_the_executor_and_the_dask_address(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from notebook_orch.config import load_config
    from notebook_orch.errors import ConfigError

    for name in ("NBO_PROJECT", "NBO_NOTEBOOKS", "NBO_STORE_URL", "NBO_DATA_DIR", "NBO_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.notebook_orch]\nexecutor = "dask"\ndask_address = "tcp://10.0.0.5:8786"\n', encoding="utf-8")
    config = load_config(tmp_path)
    assert (config.executor, config.dask_address) == ("dask", "tcp://10.0.0.5:8786")
    (tmp_path / "pyproject.toml").write_text('[tool.notebook_orch]\ndask_address = 8786\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pyproject.toml: \[tool.notebook_orch\] dask_address must be a "
                                          r"non-empty string, not int 8786"):
        load_config(tmp_path)


def test_the_cli_passes_address_to_the_dask_executor() -> None:
    import argparse

    from notebook_orch.faces.cli_runs import add_run_commands, submit_options

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_run_commands(sub, lambda name, help_text: sub.add_parser(name, help=help_text))
    args = parser.parse_args(["backfill", "x", "--executor", "dask", "--address", "tcp://127.0.0.1:8786"])
    options = submit_options(args)
    assert options["executor"] == "dask"
    assert options["executor_options"] == {"address": "tcp://127.0.0.1:8786"}
    assert submit_options(parser.parse_args(["backfill", "x"]))["executor"] is None  # the project's setting


def test_a_worker_that_cannot_see_the_shared_paths_refuses_before_anything_is_stored(tmp_path: Path) -> None:
    from notebook_orch.engine.dask_executor import SharedPathMissing, run_on_worker
    from notebook_orch.engine.executor import RunRequest

    elsewhere = tmp_path / "mounted-on-the-submitter-only"
    request = RunRequest(project_root=str(elsewhere), store_url=f"sqlite:///{elsewhere}/.notebook_orch/store.db",
                         notebook="notebooks/days.ipynb", partition="2013-01-01", assets=("value",),
                         code_versions={"value": "c1"}, run_ids=("r1",))
    with pytest.raises(SharedPathMissing) as caught:
        run_on_worker(request)
    message = str(caught.value)
    assert f"project folder {elsewhere}" in message and f"notebook {elsewhere}/notebooks/days.ipynb" in message
    assert f"SQLite store's folder {elsewhere}/.notebook_orch" in message
    assert "same paths as the machine that submitted" in message and "postgresql+psycopg" in message
    assert not elsewhere.exists()  # no store file, no folder made
