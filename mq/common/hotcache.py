"""A bounded memo for small pure functions on the send path, fast on both runtimes.

CPython's ``functools.lru_cache`` is C code and the fastest there. PyPy's is pure Python: each call builds a
key object and runs a locked linked-list update, which costs more than most of the functions it wraps (it was
~1 call per stored message, on every batch member's tags). On PyPy the memo is a plain dict, emptied when it
reaches ``maxsize``: the same bound, and the JIT sees one dict lookup.
"""

from __future__ import annotations

import functools
import platform
from typing import Any, Callable, Dict, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
#: The send path's few runtime-dependent choices: what is cheaper in CPython's interpreter is not always
#: cheaper under PyPy's JIT (a memo, a lookup table, a shortcut test).
PYPY = platform.python_implementation() == "PyPy"


def dict_cache(maxsize: int) -> Callable[[F], F]:
    """Memoize ``fn`` by its positional arguments in a dict of at most ``maxsize`` entries."""

    def wrap(fn: F) -> F:
        memo: Dict[Any, Any] = {}

        @functools.wraps(fn)
        def cached(*args: Any) -> Any:
            try:
                return memo[args]
            except KeyError:
                pass
            value = fn(*args)
            if len(memo) >= maxsize:
                memo.clear()
            memo[args] = value
            return value

        cached.cache_clear = memo.clear  # type: ignore[attr-defined]
        cached.memo = memo  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    return wrap


def hot_cache(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` on CPython, ``dict_cache(maxsize)`` on PyPy."""
    if PYPY:
        return dict_cache(maxsize)
    return functools.lru_cache(maxsize=maxsize)  # type: ignore[return-value]
