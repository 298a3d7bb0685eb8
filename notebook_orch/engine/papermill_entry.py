"""What papermill's ``papermill.engine`` entry point names: our engine, imported on first use.

papermill loads every engine entry point while ``import papermill`` runs. ``papermill_engine`` imports papermill to
subclass its ``Engine``, so when our code imports ``papermill_engine`` before papermill was imported, papermill would
ask for the engine while its module is half-imported and fail (and with it every ``import papermill``). This proxy
imports nothing until papermill uses it; papermill calls only class methods on an engine.
"""

from __future__ import annotations

from typing import Any


class _Deferred(type):
    def __getattr__(cls, name: str) -> Any:
        from notebook_orch.engine.papermill_engine import NotebookOrchEngine

        return getattr(NotebookOrchEngine, name)


class NotebookOrchEngine(metaclass=_Deferred):
    """Stands for ``notebook_orch.engine.papermill_engine.NotebookOrchEngine`` (see the module's docstring)."""


__all__ = ["NotebookOrchEngine"]
