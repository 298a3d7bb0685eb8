"""Secrets are read from the environment at run time — never passed as parameters, stored or logged.

    token = notebook_orch.secret("WAREHOUSE_TOKEN")

The returned ``Secret`` behaves like the string but shows as ``Secret('WAREHOUSE_TOKEN')`` in reprs and notebook
outputs, so displaying it by accident does not leak it. Runs pass the executor's environment to the kernel, so a
variable exported where ``nbo`` runs is visible to the notebook; nothing of notebook_orch writes it anywhere.

A ``Secret`` refuses to be pickled (a pickle is a file or a message to another process: exactly where a secret
must not go by accident); call ``.reveal()`` to hand the plain value on deliberately. Error messages that
notebook_orch records or shows pass through ``redact``, which replaces every secret value this process has read
with ``<secret NAME>``, so ``raise ValueError(f"login failed for {token}")`` does not put the token in the store.

Scrubbing goes by VALUE, not by the name written in the source: every value read through ``secret()`` in this
process is known, whatever expression computed its name and wherever it ended up (an f-string, a dict, a
DataFrame cell). In a Jupyter kernel, the first read installs a scrub on the kernel's message session, so no
output — stream, display, result, error, widget message — leaves the kernel with the value in it (what the front
end, papermill's output notebook and the kernel's log receive). Inside a run, each name read is appended to the
run's manifest, so the executor can scrub what it keeps (the run's error, the output notebook) with the values of
those variables as a second line of defence; the manifest holds names, never values. Value storage refuses to
store a value that contains a secret (``notebook_orch.storage``).

Limits: a value shorter than ``MIN_REDACTED_LENGTH`` is not scrubbed; a value that reaches an output split across
two stream messages, or transformed (encoded, reversed, sliced), is not recognised.
"""

from __future__ import annotations

import os
import sys
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
        _in_kernel(name)
    return Secret(value, name)


def known_values() -> dict[str, str]:
    """Every secret value read in this process (through ``secret()``) -> the name it was read under."""
    with _lock:
        return dict(_read)


def scrub(node: Any) -> Any:
    """``node`` (JSON-like: dicts, lists, strings) with every secret value in its strings redacted; the same object
    when nothing changed, so callers can tell cheaply."""
    if isinstance(node, str):
        return redact(node)
    if isinstance(node, (list, tuple)):
        items = [scrub(v) for v in node]
        return node if all(a is b for a, b in zip(items, node)) else type(node)(items)
    if isinstance(node, dict):
        pairs = {k: scrub(v) for k, v in node.items()}
        return node if all(pairs[k] is v for k, v in node.items()) else pairs
    return node


# -- inside a Jupyter kernel -------------------------------------------------------------------------------------
_reported: set[tuple[str, str]] = set()  # (manifest, name) already appended to a run's manifest


def _in_kernel(name: str) -> None:
    """In an IPython kernel: scrub every message that leaves it, and tell the run (if any) which name was read."""
    ipython_mod = sys.modules.get("IPython")  # never import IPython for a plain script
    shell = ipython_mod.get_ipython() if ipython_mod is not None else None
    if shell is None:
        return
    kernel = getattr(shell, "kernel", None)
    session = getattr(kernel, "session", None)
    if session is not None:
        install_session_scrub(session)
    run = shell.user_ns.get("nbo_run")
    manifest = run.get("manifest") if isinstance(run, dict) else None
    if manifest and (manifest, name) not in _reported:
        from notebook_orch.engine.manifest import append_manifest

        append_manifest(manifest, {"secret": name})
        _reported.add((manifest, name))


def install_session_scrub(session: Any) -> None:
    """Redact secret values in every message ``session`` (a jupyter_client ``Session``) serializes.

    Every message a kernel sends — stdout/stderr streams, display data, execute results, errors and the execute
    reply, comm messages of widgets — goes through its session's ``serialize``: one place, before the bytes leave
    the process. Installed once per session; costs nothing until a secret has been read.
    """
    if getattr(session, "_nbo_scrubbing", False):
        return
    original = session.serialize

    def serialize(msg: dict, ident: Any = None) -> Any:
        content = msg.get("content") if isinstance(msg, dict) else None
        if content and _read:
            clean = scrub(content)
            if clean is not content:
                msg = {**msg, "content": clean}
        return original(msg, ident)

    session.serialize = serialize
    session._nbo_scrubbing = True


def redact(text: str) -> str:
    """``text`` with every secret value read in this process replaced by ``<secret NAME>``."""
    with _lock:
        known = sorted(_read.items(), key=lambda item: -len(item[0]))  # longest first: one may contain another
    for value, name in known:
        if value in text:
            text = text.replace(value, f"<secret {name}>")
    return text
