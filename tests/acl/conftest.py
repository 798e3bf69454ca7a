"""Plain tests here run in the main greenlet, so ``mqadmin`` runs in-process (tests/admin/conftest.py)."""

from tests.support.main_greenlet import pytest_pyfunc_call  # noqa: F401
