"""notebook_orch: a Jupyter-native, asset-aware orchestrator.

Public surface: ``Project`` (the Python API every face goes through), ``secret`` (read a secret at run time) and
``load_ipython_extension`` (``%load_ext notebook_orch``). Heavy modules load on first use so that
``import notebook_orch`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Project", "secret", "load_ipython_extension", "__version__"]

if TYPE_CHECKING:
    from notebook_orch.project import Project
    from notebook_orch.secrets import secret


def __getattr__(name: str) -> Any:
    if name == "Project":
        from notebook_orch.project import Project

        return Project
    if name == "secret":
        from notebook_orch.secrets import secret

        return secret
    raise AttributeError(f"module 'notebook_orch' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    from notebook_orch.faces.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from notebook_orch.faces.magics import unload_ipython_extension as _unload

    _unload(ipython)
