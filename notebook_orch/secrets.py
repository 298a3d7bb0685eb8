"""Secrets are read from the environment at run time — never passed as parameters, stored or logged.

    token = notebook_orch.secret("WAREHOUSE_TOKEN")

The returned ``Secret`` behaves like the string but shows as ``Secret('WAREHOUSE_TOKEN')`` in reprs and notebook
outputs, so displaying it by accident does not leak it. Runs pass the executor's environment to the kernel, so a
variable exported where ``nbo`` runs is visible to the notebook; nothing of notebook_orch writes it anywhere.
"""

from __future__ import annotations

import os

from notebook_orch.errors import NotebookOrchError


class Secret(str):
    """A ``str`` that never shows its value in a repr or a display."""

    name: str

    def __new__(cls, value: str, name: str) -> Secret:
        obj = super().__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # noqa: ANN001 - IPython's protocol
        printer.text(repr(self))

    def reveal(self) -> str:
        return str.__str__(self)


def secret(name: str, default: str | None = None) -> Secret:
    """The value of environment variable ``name`` at run time; a clear error when it is not set."""
    value = os.environ.get(name, default)
    if value is None:
        raise NotebookOrchError(
            f"Secret {name!r} is not set: export {name}=... in the environment that runs the notebook "
            "(your shell, the scheduler's service file, or the CI secret store). Secrets are never parameters."
        )
    return Secret(value, name)
