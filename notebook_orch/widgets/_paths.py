"""Links that open a project file in the JupyterLab serving this kernel (found from its runtime files)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def lab_link(project_root: Path | str, path: str) -> str | None:
    """``/lab/tree/...`` for ``path`` (relative to the project root, or absolute), or None when no running
    Jupyter server serves a folder containing it."""
    target = (Path(project_root) / path).resolve()
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    for server in list_running_servers():
        root = Path(server.get("root_dir") or server.get("notebook_dir") or "").resolve()
        if target.is_relative_to(root):
            base = server.get("base_url", "/")
            return f"{base}lab/tree/{quote(target.relative_to(root).as_posix())}"
    return None
