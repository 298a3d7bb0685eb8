"""The exception tree of notebook_orch.

    NotebookOrchError                 every error the package raises on purpose
    ├── ConfigError                   a [tool.notebook_orch] / NBO_* value of the wrong type or out of range
    ├── InvalidOption                 an option given to the Python API out of range (workers, retries, limit ...)
    ├── DeclarationError              a bad ``%%asset`` line (unknown option, bad name, bad mapping ...), or an
    │                                 ``%%asset`` cell the project cannot run as declared (unknown or invalid
    │                                 dependency, a cycle, a mapping that does not fit; ``problem.asset`` set)
    ├── PartitionError                a partition spec or key that is invalid, reversed, out of range or path-like
    ├── DiscoveryError                a notebook file that cannot be read as a notebook
    ├── ProjectInvalid                graph validation: carries every ``Problem`` found, raised once
    ├── StoreError                    the metadata store
    │   ├── StoreOpenError            the store URL cannot be opened
    │   │   └── StoreDamaged          the file is a store whose schema rows or tables are damaged
    │   ├── SchemaVersionError        the store was written by a newer schema version
    │   └── PartitionLocked           another run holds the (asset, partition)
    ├── ValueStorageError             a value cannot be stored or loaded
    └── RunFailed                     a run (or one asset of it) failed; carries asset, partition, run id, cell

Messages state the object, the rule it broke and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass


class NotebookOrchError(Exception):
    """Base class. Renders as one short line in a notebook instead of a long traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def cell_number(index: int | None) -> str:
    """How a person finds a cell: JupyterLab counts from 1 (``Cell 19``); our indexes are 0-based positions."""
    return "?" if index is None else str(index + 1)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the project, located as precisely as we can."""

    message: str
    notebook: str | None = None
    cell: int | None = None
    asset: str | None = None

    def __str__(self) -> str:
        where = []
        if self.notebook is not None:
            where.append(self.notebook)
        if self.cell is not None:
            where.append(f"cell {cell_number(self.cell)}")
        prefix = f"{', '.join(where)}: " if where else ""
        return prefix + self.message


class ConfigError(NotebookOrchError):
    pass


class InvalidOption(NotebookOrchError, ValueError):
    pass


class DeclarationError(NotebookOrchError):
    def __init__(self, message: str, *, notebook: str | None = None, cell: int | None = None,
                 asset: str | None = None) -> None:
        self.problem = Problem(message, notebook, cell, asset)
        super().__init__(str(self.problem))


class PartitionError(NotebookOrchError, ValueError):
    pass


class DiscoveryError(NotebookOrchError):
    def __init__(self, message: str, *, notebook: str | None = None, cell: int | None = None) -> None:
        self.problem = Problem(message, notebook, cell)
        super().__init__(str(self.problem))


class ProjectInvalid(NotebookOrchError):
    """Validation collects every problem and raises once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the project:\n{lines}")


class StoreError(NotebookOrchError):
    pass


class StoreOpenError(StoreError):
    pass


class StoreDamaged(StoreOpenError):
    pass


class SchemaVersionError(StoreError):
    pass


class PartitionLocked(StoreError):
    def __init__(self, asset: str, partition: str, holder_run_id: str) -> None:
        self.asset, self.partition, self.holder_run_id = asset, partition, holder_run_id
        super().__init__(
            f"{asset}[{partition}] is already being materialized by run {holder_run_id}; "
            "wait for it to finish (nbo runs) or, if that run is dead, let it be reaped after its heartbeat times out."
        )


class ValueStorageError(NotebookOrchError):
    pass


class RunFailed(NotebookOrchError):
    """A run failed. User code is wrapped exactly once, here, with the cause chained."""

    def __init__(
        self,
        message: str,
        *,
        asset: str | None = None,
        partition: str | None = None,
        run_id: str | None = None,
        cell: int | None = None,
        output_path: str | None = None,
    ) -> None:
        self.asset, self.partition, self.run_id = asset, partition, run_id
        self.cell, self.output_path = cell, output_path
        super().__init__(message)


# Said after "SystemExit: CODE" wherever a cell called sys.exit() (the kernel's %%asset cells, the executor's runs).
SYSTEM_EXIT_HINT = (" (the cell called sys.exit() or raised SystemExit; in a notebook that stops the cell, not the "
                    "kernel, and fails the run: raise an exception that says what went wrong instead)")


def close_matches(word: str, candidates: list[str] | set[str] | tuple[str, ...]) -> str:
    """' Did you mean ...?' or '' — appended to messages about mistyped names."""
    import difflib

    found = difflib.get_close_matches(word, sorted(candidates), n=3, cutoff=0.6)
    if not found:
        return ""
    return " Did you mean " + " or ".join(repr(f) for f in found) + "?"
