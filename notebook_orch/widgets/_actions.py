"""Every button of the widget goes through here to ``Project.submit`` (one function, so the faces share one path)."""

from __future__ import annotations

import threading
from typing import Any


def submit(project: Any, selection: str, **options: Any) -> Any:
    """Start a background materialization and return its handle (``wait``, ``cancel``, ``done``, ``progress``)."""
    start = getattr(project, "submit", None)
    if callable(start):
        return start(selection, **options)
    return _ThreadHandle(project, selection, options)  # until Project.submit exists on this checkout


class _ThreadHandle:
    """The smallest stand-in for ``RunHandle``: ``Project.materialize`` in a thread (no cancel, no progress)."""

    def __init__(self, project: Any, selection: str, options: dict[str, Any]) -> None:
        options = {k: v for k, v in options.items() if k not in ("executor",)}
        self.plan = project.plan(selection, partitions=options.get("partitions"),
                                 downstream=options.get("downstream", False),
                                 only_stale=options.get("only_stale", False))
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(project, selection, options), daemon=True)
        self._thread.start()

    def _run(self, project: Any, selection: str, options: dict[str, Any]) -> None:
        try:
            self.result = project.materialize(selection, **options)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self.error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Any:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def cancel(self) -> None:
        raise NotImplementedError("Cancel needs Project.submit's RunHandle; this checkout has no run engine handle.")

    def progress(self) -> None:
        return None
