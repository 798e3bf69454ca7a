from __future__ import annotations

import pytest
from twisted.logger import globalLogPublisher


@pytest.fixture
def log_events():
    """Every event the ``twisted.logger`` loggers emit during the test."""
    events: list = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    yield events
    globalLogPublisher.removeObserver(observer)
