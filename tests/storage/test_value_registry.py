"""The handler registry as an object: lookups, misses, choosing a handler, custom and plug-in handlers."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from notebook_orch.errors import ValueStorageError
from notebook_orch.storage import (
    HandlerRegistry,
    JsonHandler,
    ParquetHandler,
    PickleHandler,
    ValueMetadata,
    ValueStore,
    choose_handler,
    default_registry,
)
from notebook_orch.storage import _registry as registry_module


class TextHandler:
    """A custom handler: plain text files, for str values only."""

    name = "text"
    extension = "txt"

    def can_handle(self, value: Any) -> bool:
        return isinstance(value, str)

    def write(self, value: Any, path: Path) -> None:
        path.write_text(value, encoding="utf-8")

    def read(self, path: Path) -> Any:
        return path.read_text(encoding="utf-8")

    def data_version(self, value: Any) -> str:
        import hashlib

        return hashlib.sha256(value.encode()).hexdigest()[:32]

    def describe(self, value: Any) -> ValueMetadata:
        return ValueMetadata(row_count=value.count("\n"))


DF = pd.DataFrame({"a": [1, 2]})


def test_default_registry_is_fresh_each_time_and_ordered() -> None:
    a, b = default_registry(), default_registry()
    assert a is not b
    assert a.names() == ("parquet", "json", "pickle")
    a.register(TextHandler())
    assert "text" in a and "text" not in b


def test_get_returns_the_handler() -> None:
    assert isinstance(default_registry().get("json"), JsonHandler)
    assert [h.name for h in default_registry()] == ["parquet", "json", "pickle"]


def test_miss_names_what_is_available_and_the_nearest_match() -> None:
    with pytest.raises(ValueStorageError) as info:
        default_registry().get("parqet")
    assert str(info.value) == (
        "There is no value handler named 'parqet'; available: parquet, json, pickle. Did you mean 'parquet'?"
    )


def test_miss_on_an_empty_registry() -> None:
    with pytest.raises(ValueStorageError, match=r"^There is no value handler named 'json'; available: none\.$"):
        HandlerRegistry().get("json")


# -- choose_handler ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "io", "expected"),
    [
        (DF, None, ParquetHandler),
        ({"a": [1]}, None, JsonHandler),
        ([1, 2], None, JsonHandler),
        ("text", None, JsonHandler),
        (None, None, JsonHandler),
        (DF, "parquet", ParquetHandler),
        ({"a": 1}, "json", JsonHandler),
        (DF, "pickle", PickleHandler),
        ({"a": 1}, "pickle", PickleHandler),
        ({1, 2}, "pickle", PickleHandler),
    ],
)
def test_choose_handler_rules(value: object, io: str | None, expected: type) -> None:
    assert isinstance(choose_handler(value, io, asset="x"), expected)


def test_default_never_picks_pickle_and_says_how_to_ask_for_it() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler({1, 2}, asset="unique_ids")
    assert str(info.value) == (
        "Asset 'unique_ids' holds a set, which has no default storage format (parquet stores pandas DataFrames and "
        "this value is a set; json stores JSON-able values and value is a set, which is not JSON-able). "
        "To store it anyway, add --io pickle to the %%asset line."
    )


def test_default_refusal_names_the_nested_offender_and_the_type() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler({"model": object()}, asset="trained")
    message = str(info.value)
    assert message.startswith("Asset 'trained' holds a dict, which has no default storage format")
    assert "value['model'] is a object, which is not JSON-able" in message
    assert message.endswith("To store it anyway, add --io pickle to the %%asset line.")


def test_a_series_is_told_to_become_a_frame() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler(pd.Series([1, 2]), asset="totals")
    assert "Asset 'totals' holds a pandas.Series" in str(info.value)
    assert "series.to_frame()" in str(info.value)
    assert "--io pickle" in str(info.value)


def test_dataframe_with_io_json_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler(DF, "json", asset="sales")
    assert str(info.value) == (
        "Asset 'sales' has --io json, but json does not store pandas DataFrames (convert it first if JSON is wanted: "
        "df.to_dict('records')). To store it, remove --io json (it would then be stored as parquet)."
    )


def test_non_dataframe_with_io_parquet_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler({"a": 1}, "parquet", asset="summary")
    assert str(info.value) == (
        "Asset 'summary' has --io parquet, but parquet stores pandas DataFrames and this value is a dict. "
        "To store it, remove --io parquet (it would then be stored as json)."
    )


def test_unstorable_with_io_parquet_points_to_pickle() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler({1}, "parquet", asset="ids")
    assert str(info.value).endswith("To store it, use --io pickle instead.")


def test_unknown_io_names_the_asset_and_the_nearest_handler() -> None:
    with pytest.raises(ValueStorageError) as info:
        choose_handler(DF, "pikle", asset="model")
    assert str(info.value) == (
        "Asset 'model' has --io pikle: There is no value handler named 'pikle'; available: parquet, json, pickle. "
        "Did you mean 'pickle'?"
    )


# -- custom handlers -----------------------------------------------------------------------------------------
def test_a_custom_handler_is_used_when_named_and_stores_through_the_value_store(tmp_path: Path) -> None:
    registry = default_registry()
    registry.register(TextHandler())
    assert isinstance(registry.choose("a\nb\n", "text", asset="notes"), TextHandler)
    assert isinstance(registry.choose("a\nb\n", asset="notes"), JsonHandler)  # not automatic unless asked

    store = ValueStore(tmp_path, registry)
    published = store.publish("notes", "unpartitioned", "a\nb\n", io="text", run_id="r1")
    assert published.handler == "text"
    assert published.storage_path == tmp_path / "notes" / "unpartitioned" / "r1" / "value.txt"
    assert published.storage_path.read_text() == "a\nb\n"
    assert published.metadata == ValueMetadata(row_count=2)
    assert store.load(published) == "a\nb\n"


def test_an_automatic_custom_handler_is_tried_in_registration_order() -> None:
    registry = HandlerRegistry()
    registry.register(TextHandler(), auto=True)
    registry.register(JsonHandler(), auto=True)
    assert isinstance(registry.choose("x", asset="a"), TextHandler)
    assert isinstance(registry.choose([1], asset="a"), JsonHandler)


def test_a_registry_without_pickle_suggests_what_it_has() -> None:
    registry = HandlerRegistry()
    registry.register(JsonHandler(), auto=True)
    registry.register(TextHandler())
    with pytest.raises(ValueStorageError) as info:
        registry.choose({1}, asset="ids")
    assert str(info.value).endswith("To store it anyway, choose a handler with --io (available: json, text).")


def test_registering_a_taken_name_needs_replace() -> None:
    registry = default_registry()
    with pytest.raises(ValueStorageError, match="already registered; pass replace=True"):
        registry.register(JsonHandler())
    small = JsonHandler(max_bytes=10)
    registry.register(small, auto=True, replace=True)
    assert registry.get("json") is small


@pytest.mark.parametrize(
    ("attr", "bad"), [("name", "../evil"), ("extension", "tar/gz"), ("name", ""), ("extension", "p kl")]
)
def test_handler_names_and_extensions_must_be_file_safe(attr: str, bad: str) -> None:
    handler = TextHandler()
    setattr(handler, attr, bad)
    with pytest.raises(ValueStorageError, match=f"has the {attr} {bad!r}; use letters, digits and '_' only"):
        HandlerRegistry().register(handler)


def test_an_object_missing_the_protocol_is_refused() -> None:
    with pytest.raises(ValueStorageError, match="is not a value handler; it needs name, extension"):
        HandlerRegistry().register(object())  # type: ignore[arg-type]


# -- entry points (loaded on first use) ---------------------------------------------------------------------
def test_entry_point_handlers_load_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        calls.append(group)
        return [EntryPoint("text", f"{__name__}:TextHandler", group)]

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    registry = default_registry()
    assert calls == []  # nothing loaded at construction
    assert registry.names() == ("parquet", "json", "pickle", "text")
    assert calls == [registry_module.ENTRY_POINT_GROUP]
    registry.names()
    assert len(calls) == 1


def test_a_broken_or_clashing_entry_point_warns_and_leaves_the_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return [
            EntryPoint("broken", "no_such_module_xyz:Handler", group),
            EntryPoint("clash", "notebook_orch.storage:JsonHandler", group),
        ]

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    registry = default_registry()
    with pytest.warns(RuntimeWarning) as record:
        names = registry.names()
    assert names == ("parquet", "json", "pickle")
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("Value handler entry point 'broken' (no_such_module_xyz:Handler) was not loaded")
    assert messages[1] == (
        "Value handler entry point 'clash' (notebook_orch.storage:JsonHandler) was not loaded: "
        "the name 'json' is already taken"
    )
