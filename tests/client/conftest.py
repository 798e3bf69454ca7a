"""One NameServer and two brokers, shared by the client tests of a session (each test uses its own topics)."""

from __future__ import annotations

import itertools

import pytest

from tests.client.cluster import Cluster

_ids = itertools.count()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("client-cluster"))
    try:
        c.start_broker("broker-a")
        c.start_broker("broker-b")
        yield c
    finally:
        c.close()


@pytest.fixture
def unique(request):
    """A name prefix unique to this test (topics and groups)."""
    base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:40]
    return f"{base}_{next(_ids)}"
