"""Every button of the widget goes through here to ``Project.submit`` (one function, so the faces share one path)."""

from __future__ import annotations

from typing import Any


def submit(project: Any, selection: str, **options: Any) -> Any:
    """Start a background materialization and return its ``RunHandle`` (``wait``, ``cancel``, ``done``,
    ``progress``); the kernel is free at once."""
    return project.submit(selection, **options)
