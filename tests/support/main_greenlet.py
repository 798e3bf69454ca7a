"""Plain test functions run in the main greenlet, where they can wait on a Deferred.

pytest-twisted runs every test function inside the reactor's greenlet, where ``pytest_twisted.blockon`` cannot
be called. A conftest that imports ``pytest_pyfunc_call`` from here runs its directory's synchronous tests
directly instead, so they can block on reactor work (``mqadmin`` in-process, tests/admin/conftest.py); tests
that pytest-twisted marks (``inlineCallbacks``, ``ensureDeferred``), coroutines and hypothesis tests still go
to pytest-twisted.
"""

from __future__ import annotations

import inspect

import pytest
import pytest_twisted
from twisted.internet import defer


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    f = pyfuncitem.obj
    if inspect.iscoroutinefunction(f) or hasattr(f, "hypothesis") or hasattr(f, "_pytest_twisted_mark"):
        return None
    result = f(**{name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames})
    if isinstance(result, defer.Deferred):
        pytest_twisted.blockon(result)
    return True
