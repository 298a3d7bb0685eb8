"""Links that open a project file in the JupyterLab serving this kernel (found from its runtime files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote


def running_servers() -> list[dict[str, Any]]:
    """The Jupyter servers this kernel's runtime folder lists (``jpserver-*.json``, as the server writes them).

    Read directly: importing ``jupyter_server.serverapp`` to call its ``list_running_servers`` took 7 s here.
    """
    import json

    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return []
    found = []
    for info in sorted(Path(jupyter_runtime_dir()).glob("jpserver-*.json")):
        try:
            found.append(json.loads(info.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a server that is starting or stopping
    return found


def lab_link(project_root: Path | str, path: str, servers: list[dict[str, Any]]) -> str | None:
    """``/lab/tree/...`` for ``path`` (relative to the project root, or absolute), or None when none of
    ``servers`` serves a folder containing it."""
    target = (Path(project_root) / path).resolve()
    for server in servers:
        root = Path(server.get("root_dir") or server.get("notebook_dir") or "").resolve()
        if target.is_relative_to(root):
            base = server.get("base_url", "/")
            return f"{base}lab/tree/{quote(target.relative_to(root).as_posix())}"
    return None
