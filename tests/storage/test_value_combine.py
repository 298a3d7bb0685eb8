"""combine_partitions: how several upstream partitions arrive in one cell."""

from __future__ import annotations

import pandas as pd

from notebook_orch.storage import combine_partitions


def test_frames_with_row_numbers_are_concatenated_in_order_and_renumbered() -> None:
    values = {
        "2013-01-02": pd.DataFrame({"day": ["02", "02"], "n": [3, 4]}),
        "2013-01-01": pd.DataFrame({"day": ["01"], "n": [1]}),
    }
    combined = combine_partitions(values)
    expected = pd.DataFrame({"day": ["02", "02", "01"], "n": [3, 4, 1]})
    pd.testing.assert_frame_equal(combined, expected)
    assert isinstance(combined.index, pd.RangeIndex)


def test_meaningful_indexes_are_kept() -> None:
    a = pd.DataFrame({"n": [1]}, index=pd.DatetimeIndex(["2013-01-01"], name="day"))
    b = pd.DataFrame({"n": [2]}, index=pd.DatetimeIndex(["2013-01-02"], name="day"))
    combined = combine_partitions({"a": a, "b": b})
    expected = pd.DataFrame({"n": [1, 2]}, index=pd.DatetimeIndex(["2013-01-01", "2013-01-02"], name="day"))
    pd.testing.assert_frame_equal(combined, expected)


def test_filtered_and_named_indexes_are_kept_as_is() -> None:
    a = pd.DataFrame({"n": [1, 2, 3]}).iloc[[0, 2]]
    b = pd.DataFrame({"n": [4]}, index=pd.RangeIndex(1, name="row"))
    combined = combine_partitions({"a": a, "b": b})
    assert combined.index.tolist() == [0, 2, 0]
    assert combined["n"].tolist() == [1, 3, 4]


def test_missing_columns_are_filled_with_nulls() -> None:
    combined = combine_partitions({"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"y": [2]})})
    assert combined.columns.tolist() == ["x", "y"]
    assert combined.isna().sum().tolist() == [1, 1]


def test_anything_else_is_a_dict_in_the_same_order() -> None:
    values = {"b": {"n": 2}, "a": {"n": 1}}
    combined = combine_partitions(values)
    assert combined == {"b": {"n": 2}, "a": {"n": 1}}
    assert list(combined) == ["b", "a"]
    assert combined is not values


def test_a_mix_of_frames_and_other_values_is_a_dict() -> None:
    df = pd.DataFrame({"x": [1]})
    combined = combine_partitions({"a": df, "b": None})
    assert list(combined) == ["a", "b"] and combined["a"] is df and combined["b"] is None


def test_no_partitions_is_an_empty_dict() -> None:
    assert combine_partitions({}) == {}
