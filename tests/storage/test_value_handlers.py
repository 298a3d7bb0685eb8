"""The built-in handlers against real files: round trips, data versions, metadata."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notebook_orch.errors import ValueStorageError
from notebook_orch.storage import (
    JsonHandler,
    ParquetHandler,
    PickleHandler,
    ValueHandler,
    ValueMetadata,
    describe_value,
    json_problem,
)


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, np.nan, 2.0],
            "b": [True, False, True],
            "s": ["a", None, "c"],
            "o": pd.Series(["x", None, "z"], dtype=object),
            "ni": pd.array([1, None, 3], dtype="Int64"),
            "nb": pd.array([True, None, False], dtype="boolean"),
            "nf": pd.array([1.0, None, 3.0], dtype="Float64"),
            "cat": pd.Categorical(["a", "b", "a"]),
            "ocat": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "dt": pd.to_datetime(["2020-01-01", "2020-01-02", None]),
            "dtz": pd.date_range("2020-01-01", periods=3, tz="Europe/Paris"),
            "dtns": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]).astype("datetime64[ns]"),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "sp": pd.array(["a", None, "c"], dtype="string[pyarrow]"),
        }
    )


INDEXES = {
    "range": None,
    "shifted_range": pd.RangeIndex(5, 8),
    "strings": pd.Index(["a", "b", "c"], name="key"),
    "object_strings": pd.Index(["a", "b", "c"], dtype=object),
    "filtered_ints": pd.Index([5, 7, 9]),
    "dates": pd.DatetimeIndex(["2021-01-01", "2021-01-05", "2021-01-09"], name="day"),
    "multi": pd.MultiIndex.from_arrays([["x", "x", "y"], [1, 2, 1]], names=["g", "n"]),
}


# -- parquet -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", INDEXES, ids=list(INDEXES))
def test_parquet_round_trips_common_dtypes_and_the_index(tmp_path: Path, index: str) -> None:
    df = mixed_frame()
    if INDEXES[index] is not None:
        df.index = INDEXES[index]
    handler = ParquetHandler()
    handler.write(df, tmp_path / "v.parquet")
    back = handler.read(tmp_path / "v.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert type(back.index) is type(df.index)
    assert handler.data_version(back) == handler.data_version(df)
    assert handler.describe(back) == handler.describe(df)


def test_parquet_object_string_column_keeps_object_dtype_and_none(tmp_path: Path) -> None:
    df = pd.DataFrame({"o": pd.Series(["x", None], dtype=object)})
    ParquetHandler().write(df, tmp_path / "v.parquet")
    back = ParquetHandler().read(tmp_path / "v.parquet")
    assert str(back["o"].dtype) == "object"
    assert back["o"].tolist() == ["x", None]


def test_parquet_round_trips_an_empty_frame(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str")})
    handler = ParquetHandler()
    handler.write(df, tmp_path / "v.parquet")
    pd.testing.assert_frame_equal(handler.read(tmp_path / "v.parquet"), df)
    assert handler.describe(df) == ValueMetadata(0, {"a": "int64", "s": "str"}, {"a": 0.0, "s": 0.0})


def test_parquet_refuses_mixed_object_column_with_the_fix(tmp_path: Path) -> None:
    df = pd.DataFrame({"mixed": pd.Series([1, "a"], dtype=object)})
    with pytest.raises(ValueStorageError) as info:
        ParquetHandler().write(df, tmp_path / "v.parquet")
    assert "mixed" in str(info.value)
    assert "astype(str)" in str(info.value)
    assert "--io pickle" in str(info.value)


def test_frame_data_version_is_stable_for_identical_data() -> None:
    handler = ParquetHandler()
    v = handler.data_version(mixed_frame())
    assert v == handler.data_version(mixed_frame())
    assert len(v) == 32 and int(v, 16) >= 0


def test_frame_data_version_is_the_same_after_writing_twice(tmp_path: Path) -> None:
    handler = ParquetHandler()
    handler.write(mixed_frame(), tmp_path / "a.parquet")
    handler.write(mixed_frame(), tmp_path / "b.parquet")
    a, b = handler.read(tmp_path / "a.parquet"), handler.read(tmp_path / "b.parquet")
    assert handler.data_version(a) == handler.data_version(b) == handler.data_version(mixed_frame())


def _changed(kind: str) -> pd.DataFrame:
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    if kind == "cell":
        df.loc[1, "x"] = 20
    elif kind == "string_cell":
        df.loc[2, "y"] = "C"
    elif kind == "column_name":
        df = df.rename(columns={"y": "z"})
    elif kind == "dtype":
        df["x"] = df["x"].astype("float64")
    elif kind == "nullable_dtype":
        df["x"] = df["x"].astype("Int64")
    elif kind == "column_order":
        df = df[["y", "x"]]
    elif kind == "row_order":
        df = df.iloc[[1, 0, 2]].reset_index(drop=True)
    elif kind == "index_values":
        df.index = [10, 11, 12]
    elif kind == "index_name":
        df.index.name = "row"
    elif kind == "extra_row":
        df = pd.concat([df, df.iloc[:1]], ignore_index=True)
    return df


@pytest.mark.parametrize(
    "kind",
    ["cell", "string_cell", "column_name", "dtype", "nullable_dtype", "column_order", "row_order",
     "index_values", "index_name", "extra_row"],
)
def test_frame_data_version_changes_when_the_data_changes(kind: str) -> None:
    handler = ParquetHandler()
    assert handler.data_version(_changed(kind)) != handler.data_version(_changed("none"))


def test_frame_data_version_handles_unhashable_cells() -> None:
    handler = PickleHandler()  # a frame of lists is not for parquet's hashing path, but still versioned
    a = pd.DataFrame({"l": [[1, 2], [3]]})
    assert handler.data_version(a) == handler.data_version(pd.DataFrame({"l": [[1, 2], [3]]}))
    assert handler.data_version(a) != handler.data_version(pd.DataFrame({"l": [[1, 2], [4]]}))


def test_frame_metadata_exact() -> None:
    df = pd.DataFrame(
        {
            "a": [1.0, None, 3.0, None],
            "b": ["x", "y", None, "z"],
            "c": pd.array([1, 2, 3, 4], dtype="Int64"),
            "d": pd.to_datetime(["2020-01-01", None, None, None]),
        }
    )
    assert ParquetHandler().describe(df) == ValueMetadata(
        row_count=4,
        schema={"a": "float64", "b": "str", "c": "Int64", "d": "datetime64[us]"},
        null_rates={"a": 0.5, "b": 0.25, "c": 0.0, "d": 0.75},
    )


# -- json --------------------------------------------------------------------------------------------------
JSON_VALUES = [
    {"b": 1, "a": [1, 2.5, None, True, "x"], "nested": {"deep": {"deeper": []}}},
    [1, 2, 3],
    "héllo ✓",
    42,
    3.25,
    False,
    None,
    {},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=[repr(v)[:20] for v in JSON_VALUES])
def test_json_round_trips(tmp_path: Path, value: object) -> None:
    handler = JsonHandler()
    assert handler.can_handle(value)
    handler.write(value, tmp_path / "v.json")
    back = handler.read(tmp_path / "v.json")
    assert back == value and type(back) is type(value)


def test_json_keeps_key_order_in_the_file_but_versions_canonically(tmp_path: Path) -> None:
    handler = JsonHandler()
    handler.write({"b": 1, "a": 2}, tmp_path / "v.json")
    assert list(handler.read(tmp_path / "v.json")) == ["b", "a"]
    assert handler.data_version({"b": 1, "a": 2}) == handler.data_version({"a": 2, "b": 1})
    assert handler.data_version({"a": 1}) != handler.data_version({"a": 2})
    assert handler.data_version({"a": 1}) != handler.data_version({"a": "1"})
    assert handler.data_version([1, 2]) != handler.data_version([2, 1])


def test_json_accepts_numpy_scalars_as_python_scalars(tmp_path: Path) -> None:
    handler = JsonHandler()
    value = {"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True)}
    assert handler.can_handle(value)
    handler.write(value, tmp_path / "v.json")
    assert handler.read(tmp_path / "v.json") == {"n": 3, "x": 0.5, "ok": True}
    assert handler.data_version(value) == handler.data_version({"n": 3, "x": 0.5, "ok": True})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1: "a"}, "value has the key 1 (int), but JSON keys are strings"),
        ({"a": (1, 2)}, "value['a'] is a tuple, which would come back as a list (use a list)"),
        ([1, {2, 3}], "value[1] is a set, which is not JSON-able"),
        ({"r": float("nan")}, "value['r'] is nan, which JSON cannot hold"),
        ([np.float64("inf")], "value[0] is inf, which JSON cannot hold"),
        (b"raw", "value is a bytes, which is not JSON-able"),
        ({"a": [{"b": object}]}, "value['a'][0]['b'] is a type, which is not JSON-able"),
    ],
)
def test_json_problem_names_the_offending_element(value: object, problem: str) -> None:
    assert json_problem(value) == problem
    assert not JsonHandler().can_handle(value)


def test_json_refuses_values_over_the_size_limit_with_the_fix(tmp_path: Path) -> None:
    handler = JsonHandler(max_bytes=100)
    value = ["x" * 10] * 20
    assert handler.can_handle(value)
    for call in (lambda: handler.write(value, tmp_path / "v.json"), lambda: handler.data_version(value)):
        with pytest.raises(ValueStorageError) as info:
            call()
        assert str(info.value) == (
            "the value is 261 bytes as JSON, over the 100 bytes limit for json; store it as a pandas DataFrame "
            "(--io parquet) or add --io pickle to the %%asset line"
        )
    assert not (tmp_path / "v.json").exists()


def test_json_default_limit_is_10_mb() -> None:
    assert JsonHandler().max_bytes == 10 * 1024 * 1024
    with pytest.raises(ValueStorageError, match=r"over the 10\.0 MB limit"):
        JsonHandler().data_version("x" * (10 * 1024 * 1024 + 1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trip_property(value: object) -> None:
    import json as _json
    import tempfile

    handler = JsonHandler()
    assert json_problem(value) is None
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v.json"
        handler.write(value, path)
        back = handler.read(path)
    assert back == value
    assert handler.data_version(back) == handler.data_version(value)
    assert _json.loads(_json.dumps(value)) == value


# -- pickle ------------------------------------------------------------------------------------------------
class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def test_pickle_round_trips_anything(tmp_path: Path) -> None:
    handler = PickleHandler()
    value = {"p": Point(1, 2), "t": (1, 2), "s": frozenset({3})}
    assert handler.can_handle(value)
    handler.write(value, tmp_path / "v.pkl")
    assert handler.read(tmp_path / "v.pkl") == value
    assert handler.data_version(value) == handler.data_version({"p": Point(1, 2), "t": (1, 2), "s": frozenset({3})})
    assert handler.data_version(value) != handler.data_version({"p": Point(1, 3), "t": (1, 2), "s": frozenset({3})})


def test_pickle_versions_and_describes_frames_like_parquet() -> None:
    df = mixed_frame()
    assert PickleHandler().data_version(df) == ParquetHandler().data_version(df)
    assert PickleHandler().describe(df) == ParquetHandler().describe(df)


# -- describe for non-frames -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rows"),
    [([1, 2, 3], 3), ({"a": 1, "b": 2}, 2), ((1,), 1), (set(), 0), ("abc", None), (b"ab", None), (5, None),
     (None, None), (2.5, None), (Point(1, 2), None)],
)
def test_describe_non_frames(value: object, rows: int | None) -> None:
    assert describe_value(value) == ValueMetadata(row_count=rows, schema={}, null_rates={})


# -- the contract every handler honours ----------------------------------------------------------------------
CONTRACT_CASES = [
    (ParquetHandler(), mixed_frame()),
    (JsonHandler(), {"rows": [1, 2], "name": "x"}),
    (PickleHandler(), {"p": Point(1, 2)}),
    (PickleHandler(), mixed_frame()),
]


@pytest.mark.parametrize(("handler", "value"), CONTRACT_CASES, ids=lambda x: getattr(x, "name", ""))
def test_handler_contract(tmp_path: Path, handler: ValueHandler, value: object) -> None:
    assert isinstance(handler, ValueHandler)
    assert handler.name and handler.extension.isidentifier()
    assert handler.can_handle(value)
    path = tmp_path / f"value.{handler.extension}"
    handler.write(value, path)
    back = handler.read(path)
    assert handler.describe(back) == handler.describe(value)
    assert handler.data_version(back) == handler.data_version(value)
    version = handler.data_version(value)
    assert len(version) == 32 and all(c in "0123456789abcdef" for c in version)
    assert not math.isnan(sum(handler.describe(value).null_rates.values()) or 0.0)


# -- property: any frame of common columns survives Parquet with its data version ---------------------------
def _frames():
    from hypothesis.extra.pandas import column, data_frames, range_indexes

    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
    return data_frames(
        columns=[
            column("i", dtype="int64"),
            column("f", dtype="float64"),
            column("b", dtype="bool"),
            column("o", elements=st.none() | text, dtype=object),
            column("t", elements=st.datetimes(), dtype="datetime64[ns]"),
        ],
        index=range_indexes(max_size=20),
    )


@given(_frames())
def test_parquet_round_trip_property(df: pd.DataFrame) -> None:
    import tempfile

    handler = ParquetHandler()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v.parquet"
        handler.write(df, path)
        back = handler.read(path)
    pd.testing.assert_frame_equal(back, df)
    assert handler.data_version(back) == handler.data_version(df)
    assert handler.describe(back) == handler.describe(df)
