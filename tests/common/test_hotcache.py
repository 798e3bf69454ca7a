"""hot_cache: lru_cache on CPython, a bounded dict memo on PyPy; both give the wrapped function's values."""

from __future__ import annotations

import platform

from mq.common.hotcache import dict_cache, hot_cache


def test_dict_cache_memoizes_by_arguments_and_stays_within_its_bound():
    calls = []

    @dict_cache(8)
    def double(x, y=0):
        calls.append((x, y))
        return 2 * x + y

    assert [double(1), double(1), double(2, 1), double(2, 1)] == [2, 2, 5, 5]
    assert calls == [(1, 0), (2, 1)]
    for i in range(100):
        assert double(i) == 2 * i
        assert len(double.memo) <= 8
    double.cache_clear()
    assert not double.memo and double.__name__ == "double"


def test_hot_cache_is_the_runtimes_fast_memo():
    @hot_cache(4)
    def square(x):
        return x * x

    assert [square(i % 6) for i in range(30)] == [(i % 6) ** 2 for i in range(30)]
    if platform.python_implementation() == "PyPy":
        assert len(square.memo) <= 4
    else:
        assert square.cache_info().maxsize == 4
