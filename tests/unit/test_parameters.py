"""Run parameters are checked before anything starts: names, reserved names, literal values."""

import pytest

from notebook_orch.core.parameters import check_parameters
from notebook_orch.errors import InvalidOption


def test_plain_values_pass_through():
    assert check_parameters(None) == {}
    assert check_parameters({"region": "eu", "n": 3, "rate": 0.5, "on": True, "x": None, "ks": ["a", {"b": 1}]}) \
        == {"region": "eu", "n": 3, "rate": 0.5, "on": True, "x": None, "ks": ["a", {"b": 1}]}


@pytest.mark.parametrize("params, match", [
    ({"partition_key": "2024-01-01"}, "'partition_key' is set by every run itself"),
    ({"nbo_run": {}}, "'nbo_run' is set by every run itself"),
    ({"1x": "a"}, "'1x' is not a Python identifier"),
    ({"class": "a"}, "'class' is not a Python identifier"),
    ({"when": object()}, "'when' has a value of type object"),
    ({"rate": float("nan")}, "'rate' has a value of type float"),
])
def test_bad_parameters_name_the_key(params, match):
    with pytest.raises(InvalidOption, match=match):
        check_parameters(params)


def test_every_problem_is_reported_together():
    with pytest.raises(InvalidOption) as info:
        check_parameters({"partition_date": "x", "a-b": 1})
    assert "'partition_date'" in str(info.value) and "'a-b'" in str(info.value)
