"""``HandlerRegistry``: value handlers by name, and the rule that picks one for a value."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

from notebook_orch.errors import ValueStorageError, close_matches
from notebook_orch.storage._handlers import JsonHandler, ParquetHandler, PickleHandler, type_name
from notebook_orch.storage._types import ValueHandler

ENTRY_POINT_GROUP = "notebook_orch.value_handlers"
_SAFE = re.compile(r"^[A-Za-z0-9_]+$")  # names and extensions end up in file names


class HandlerRegistry:
    """Value handlers by name. Built-ins come from ``default_registry()``; tests build their own.

    Handlers registered with ``auto=True`` are tried in registration order when an asset has no ``--io``;
    the others are used only when named. Third-party handlers from the ``notebook_orch.value_handlers`` entry
    point group (when a group is given) load on first use, explicit-only, never replacing a registered name.
    """

    def __init__(self, *, entry_point_group: str | None = None) -> None:
        self._handlers: dict[str, ValueHandler] = {}
        self._auto: list[str] = []
        self._entry_point_group = entry_point_group
        self._entry_points_loaded = entry_point_group is None

    def register(self, handler: ValueHandler, *, auto: bool = False, replace: bool = False) -> None:
        if not isinstance(handler, ValueHandler):
            raise ValueStorageError(
                f"{handler!r} is not a value handler; it needs name, extension, can_handle, write, read, "
                "data_version and describe."
            )
        for what, text in (("name", handler.name), ("extension", handler.extension)):
            if not isinstance(text, str) or not _SAFE.match(text):
                raise ValueStorageError(
                    f"Value handler {handler!r} has the {what} {text!r}; use letters, digits and '_' only."
                )
        if handler.name in self._handlers and not replace:
            raise ValueStorageError(
                f"A value handler named {handler.name!r} is already registered; pass replace=True to swap it."
            )
        self._handlers[handler.name] = handler
        if auto and handler.name not in self._auto:
            self._auto.append(handler.name)
        elif not auto and handler.name in self._auto:
            self._auto.remove(handler.name)

    def names(self) -> tuple[str, ...]:
        self._load_entry_points()
        return tuple(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[ValueHandler]:
        return iter([self._handlers[n] for n in self.names()])

    def get(self, name: str) -> ValueHandler:
        names = self.names()
        try:
            return self._handlers[name]
        except KeyError:
            available = ", ".join(names) or "none"
            raise ValueStorageError(
                f"There is no value handler named {name!r}; available: {available}." + close_matches(name, names)
            ) from None

    def choose(self, value: Any, io: str | None = None, *, asset: str) -> ValueHandler:
        """The handler for ``value``: the one named by ``io`` if it accepts the value, else the first automatic
        handler that does. Errors name the asset, why the value was refused and the fix."""
        if io is not None:
            try:
                handler = self.get(io)
            except ValueStorageError as exc:
                raise ValueStorageError(f"Asset {asset!r} has --io {io}: {exc}") from None
            if handler.can_handle(value):
                return handler
            default = self._automatic(value)
            if default is not None:
                fix = f"remove --io {io} (it would then be stored as {default.name})"
            elif "pickle" in self._handlers and io != "pickle":
                fix = "use --io pickle instead"
            else:
                fix = f"choose another handler with --io (available: {', '.join(self._handlers)})"
            reason = _why_not(handler, value)
            raise ValueStorageError(f"Asset {asset!r} has --io {io}, but {reason}. To store it, {fix}.")
        handler = self._automatic(value)
        if handler is not None:
            return handler
        reasons = "; ".join(_why_not(self._handlers[n], value) for n in self._auto) or "no handler is automatic"
        fix = (
            "add --io pickle to the %%asset line"
            if "pickle" in self._handlers
            else f"choose a handler with --io (available: {', '.join(self._handlers) or 'none'})"
        )
        raise ValueStorageError(
            f"Asset {asset!r} holds a {type_name(value)}, which has no default storage format ({reasons}). "
            f"To store it anyway, {fix}."
        )

    def _automatic(self, value: Any) -> ValueHandler | None:
        self._load_entry_points()
        for name in self._auto:
            if self._handlers[name].can_handle(value):
                return self._handlers[name]
        return None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self._entry_point_group):
            try:
                obj = ep.load()
                handler = obj() if isinstance(obj, type) else obj
                if getattr(handler, "name", None) in self._handlers:
                    raise ValueStorageError(f"the name {handler.name!r} is already taken")
                self.register(handler)
            except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the built-ins
                warnings.warn(
                    f"Value handler entry point {ep.name!r} ({ep.value}) was not loaded: {exc}",
                    RuntimeWarning,
                    stacklevel=3,
                )


def _why_not(handler: ValueHandler, value: Any) -> str:
    why_not = getattr(handler, "why_not", None)
    reason = why_not(value) if why_not is not None else ""
    return reason or f"{handler.name} cannot store a {type_name(value)}"


def default_registry() -> HandlerRegistry:
    """A fresh registry with parquet and json (automatic, in that order), pickle (only when named) and any
    handlers installed under the ``notebook_orch.value_handlers`` entry point group."""
    registry = HandlerRegistry(entry_point_group=ENTRY_POINT_GROUP)
    registry.register(ParquetHandler(), auto=True)
    registry.register(JsonHandler(), auto=True)
    registry.register(PickleHandler())
    return registry


def choose_handler(
    value: Any, io: str | None = None, *, asset: str, registry: HandlerRegistry | None = None
) -> ValueHandler:
    """``registry.choose(...)`` on the default registry when none is given."""
    return (default_registry() if registry is None else registry).choose(value, io, asset=asset)
