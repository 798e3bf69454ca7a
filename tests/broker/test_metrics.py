"""mq.metrics: a per-service registry, collected on the reactor thread, written in a thread, cached briefly."""

from __future__ import annotations

import pytest_twisted
from prometheus_client import Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from mq.metrics import CachedRenderer, CallbackCollector, metrics_site, new_registry


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


class Threads:
    """Stands in for the thread pool: holds each job until the test runs it."""

    def __init__(self):
        self.jobs = []

    def __call__(self, fn):
        d = defer.Deferred()
        self.jobs.append((fn, d))
        return d

    def run_all(self):
        while self.jobs:
            fn, d = self.jobs.pop(0)
            try:
                d.callback(fn())
            except Exception:
                d.errback()


def test_a_scrape_is_collected_once_written_in_a_thread_and_shared_for_a_second():
    registry, clock, pool = new_registry(), task.Clock(), Threads()
    collected = []

    def collect():
        collected.append(clock.seconds())
        g = GaugeMetricFamily("mq_test_live", "x")
        g.add_metric([], len(collected))
        yield g

    registry.register(CallbackCollector(collect))
    renderer = CachedRenderer(registry, clock, cache_seconds=1.0, in_thread=pool)
    first, second = renderer.render(generate_latest, "text"), renderer.render(generate_latest, "text")
    assert collected == [0] and len(pool.jobs) == 1  # collected on this thread; the text is the thread's job
    assert not first.called and not second.called
    pool.run_all()
    a, b = first.result, second.result
    assert a == b and b"mq_test_live 1.0" in a and renderer.renders == 1
    clock.advance(0.5)
    again = renderer.render(generate_latest, "text")
    assert again.result == a and collected == [0] and not pool.jobs  # from the cache
    clock.advance(0.6)
    fresh = renderer.render(generate_latest, "text")
    pool.run_all()
    assert b"mq_test_live 2.0" in fresh.result and renderer.renders == 2


def test_a_failed_rendering_reaches_every_waiter_and_is_not_kept():
    registry, clock, pool = new_registry(), task.Clock(), Threads()
    renderer = CachedRenderer(registry, clock, in_thread=pool)

    def broken(_collected):
        raise RuntimeError("no text")

    waiting = [renderer.render(broken, "text"), renderer.render(broken, "text")]
    pool.run_all()
    for d in waiting:
        failure = []
        d.addErrback(failure.append)
        assert failure and failure[0].check(RuntimeError)
    assert renderer.cached == {} and renderer.waiting == {}
    renderer.render(generate_latest, "text")
    assert len(pool.jobs) == 1  # tried again at once


@pytest_twisted.inlineCallbacks
def test_concurrent_scrapes_over_http_share_one_rendering():
    registry = new_registry()
    Counter("mq_test_shared", "x", registry=registry).inc()
    renderer = CachedRenderer(registry, reactor, cache_seconds=60)
    port = reactor.listenTCP(0, metrics_site(registry, renderer=renderer), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        agent = Agent(reactor)
        responses = yield defer.gatherResults([agent.request(b"GET", url) for _ in range(5)])
        bodies = yield defer.gatherResults([readBody(r) for r in responses])
        assert {r.code for r in responses} == {200} and len(set(bodies)) == 1
        assert b"mq_test_shared_total 1.0" in bodies[0] and renderer.renders == 1
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_prometheus_asking_for_openmetrics_is_served_from_the_cache_too():
    """choose_encoder makes a new OpenMetrics encoder per call: the cache goes by content type."""
    registry = new_registry()
    Counter("mq_test_om", "x", registry=registry).inc()
    renderer = CachedRenderer(registry, reactor, cache_seconds=60)
    port = reactor.listenTCP(0, metrics_site(registry, renderer=renderer), interface="127.0.0.1")
    accept = (b"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # what Prometheus sends
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        agent = Agent(reactor)
        for _ in range(3):
            response = yield agent.request(b"GET", url, Headers({b"Accept": [accept]}))
            body = yield readBody(response)
            assert body.endswith(b"# EOF\n") and b"mq_test_om_total 1.0" in body
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"application/openmetrics-text")
        yield readBody((yield agent.request(b"GET", url)))  # the text format is its own entry
        assert renderer.renders == 2 and len(renderer.cached) == 2
    finally:
        yield port.stopListening()
