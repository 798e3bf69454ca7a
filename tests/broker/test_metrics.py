"""mq.metrics: a per-service registry served over HTTP on the reactor thread."""

from __future__ import annotations

import pytest_twisted
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from mq.metrics import CallbackCollector, metrics_site, new_registry


def test_registries_are_separate():
    a, b = new_registry(), new_registry()
    Counter("mq_test_total", "x", registry=a).inc()
    Counter("mq_test_total", "x", registry=b)  # no clash across services
    assert a.get_sample_value("mq_test_total") == 1.0
    assert b.get_sample_value("mq_test_total") == 0.0


def test_callback_collector_reads_live_state():
    registry = new_registry()
    state = {"lag": 3}

    def collect():
        g = GaugeMetricFamily("mq_test_lag", "lag", labels=["group"])
        g.add_metric(["g"], state["lag"])
        yield g

    registry.register(CallbackCollector(collect))
    assert registry.get_sample_value("mq_test_lag", {"group": "g"}) == 3
    state["lag"] = 7
    assert registry.get_sample_value("mq_test_lag", {"group": "g"}) == 7


@pytest_twisted.inlineCallbacks
def test_served_over_http():
    registry = new_registry()
    Counter("mq_test_requests", "x", registry=registry).inc(5)
    port = reactor.listenTCP(0, metrics_site(registry), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        response = yield Agent(reactor).request(b"GET", url)
        body = yield readBody(response)
        assert response.code == 200
        assert b"mq_test_requests_total 5.0" in body
    finally:
        yield port.stopListening()
