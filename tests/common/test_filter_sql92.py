"""SQL92 property filters: semantics (three-valued, strings read as numbers) and fuzzing (only Sql92Error)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.common.filter_sql92 import Sql92Error, compile_sql92


@pytest.mark.parametrize("text, props, expected", [
    ("a > 5 AND b = 'x'", {"a": "10", "b": "x"}, True),
    ("a > 5 AND b = 'x'", {"a": "3", "b": "x"}, False),
    ("a > 5", {"a": "ten"}, False),  # not a number: unknown
    ("NOT (a > 5)", {"a": "ten"}, False),  # NOT unknown is unknown
    ("a > 5 OR b = 'x'", {"b": "x"}, True),  # unknown OR true
    ("a = 2.5", {"a": "2.50"}, True),
    ("a = -3", {"a": "-3"}, True),
    ("a BETWEEN 1 AND 3", {"a": "3"}, True),
    ("a NOT BETWEEN 1 AND 3", {"a": "4"}, True),
    ("a NOT BETWEEN 1 AND 3", {}, False),
    ("b IN ('x', 'y')", {"b": "y"}, True),
    ("b NOT IN ('x', 'y')", {"b": "z"}, True),
    ("b NOT IN ('x', 'y')", {}, False),
    ("c IS NULL", {}, True),
    ("c is not null", {"c": ""}, True),
    ("s = 'it''s'", {"s": "it's"}, True),
    ("flag = TRUE", {"flag": "true"}, True),
    ("a <> 1", {"a": "1"}, False),
    ("a != 1", {"a": "2"}, True),
    ("TRUE", {}, True),
    ("(a = 1 OR a = 2) AND NOT b = 'x'", {"a": "2", "b": "y"}, True),
])
def test_semantics(text, props, expected):
    assert compile_sql92(text).matches(props) is expected


@pytest.mark.parametrize("text, where", [
    ("a >", "position 3"), ("a", "not a condition"), ("", "empty"), ("a = 1 b", "position 6"),
    ("a IN ()", "position 6"), ("a ~ 1", "'~'"), ("NOT a", "NOT needs a condition"), ("a BETWEEN 1", "AND"),
])
def test_errors_say_where(text, where):
    with pytest.raises(Sql92Error) as e:
        compile_sql92(text)
    assert where in str(e.value) and "invalid SQL92 expression" in str(e.value)


ATOMS = st.sampled_from(["a", "b", "1", "'x'", "(", ")", "AND", "OR", "NOT", "=", ">", "<>", "IN", "BETWEEN",
                         "IS", "NULL", ",", "-", "TRUE", "2.5", "'", "!", "é"])


@given(st.lists(ATOMS, max_size=12).map(" ".join), st.dictionaries(st.sampled_from("ab"), st.text(max_size=4)))
def test_fuzz_only_sql92_errors(text, props):
    try:
        expr = compile_sql92(text)
    except Sql92Error:
        return
    assert expr.matches(props) in (True, False)


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(Sql92Error):
        compile_sql92("(" * 5000 + "a = 1" + ")" * 5000)
