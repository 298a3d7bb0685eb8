"""Secrets are read from the environment at run time — never passed as parameters, stored or logged.

    token = notebook_orch.secret("WAREHOUSE_TOKEN")

The returned ``Secret`` behaves like the string but shows as ``Secret('WAREHOUSE_TOKEN')`` in reprs and notebook
outputs, so displaying it by accident does not leak it. Runs pass the executor's environment to the kernel, so a
variable exported where ``nbo`` runs is visible to the notebook; nothing of notebook_orch writes it anywhere.

A ``Secret`` refuses to be pickled (a pickle is a file or a message to another process: exactly where a secret
must not go by accident); call ``.reveal()`` to hand the plain value on deliberately. Error messages that
notebook_orch records or shows pass through ``redact``, which replaces every secret value this process has read
with ``<secret NAME>``, so ``raise ValueError(f"login failed for {token}")`` does not put the token in the store.
"""

from __future__ import annotations

import os
import threading
from typing import Any, NoReturn

from notebook_orch.errors import NotebookOrchError

# Values shorter than this are not redacted: replacing every "1" or "ab" in a message would garble it, and a
# value that short protects nothing anyway.
MIN_REDACTED_LENGTH = 4

_lock = threading.Lock()
_read: dict[str, str] = {}  # secret value -> the name it was read under


class Secret(str):
    """A ``str`` that never shows its value in a repr or a display, and is never pickled."""

    name: str

    def __new__(cls, value: str, name: str) -> Secret:
        obj = super().__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def reveal(self) -> str:
        """The plain value, as an ordinary ``str``."""
        return str.__str__(self)

    # A secret is immutable, so copies may be the object itself (copy.deepcopy of a namespace must not fail).
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            f"Secret({self.name!r}) cannot be pickled: pickles end up in files and other processes. Read it with "
            f"notebook_orch.secret({self.name!r}) where it is needed, or pass .reveal() on purpose."
        )


def secret(name: str, default: str | None = None) -> Secret:
    """The value of environment variable ``name`` at run time; a clear error when it is not set."""
    value = os.environ.get(name, default)
    if value is None:
        raise NotebookOrchError(
            f"Secret {name!r} is not set: export {name}=... in the environment that runs the notebook "
            "(your shell, the scheduler's service file, or the CI secret store). Secrets are never parameters."
        )
    if len(value) >= MIN_REDACTED_LENGTH:
        with _lock:
            _read[value] = name
    return Secret(value, name)


def redact(text: str) -> str:
    """``text`` with every secret value read in this process replaced by ``<secret NAME>``."""
    with _lock:
        known = sorted(_read.items(), key=lambda item: -len(item[0]))  # longest first: one may contain another
    for value, name in known:
        if value in text:
            text = text.replace(value, f"<secret {name}>")
    return text
