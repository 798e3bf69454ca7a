"""Prometheus metrics for the mq services: one ``CollectorRegistry`` per service, served over HTTP by Twisted.

Each service (NameServer, broker) owns its registry, so two services in one process (``twistd mq``) never
collide on metric names, and tests can read a service's figures without a global registry.

A scrape must not stall the broker: with thousands of series (exporter families by topic and group) the text
takes tens of milliseconds to build. So the collectors run on the reactor thread (they read state that only
the reactor thread changes: routes, consumer offsets, store counters, so nothing half-updated is seen), which
yields plain metric families, and the text is written from those in the reactor's thread pool. The answer is
kept for ``CACHE_SECONDS``, and scrapes that come while one is being made wait for it: any number of scrapers
cost at most one collection per second.

Use::

    registry = new_registry()
    sends = Counter("mq_broker_messages_in", "...", ["topic"], registry=registry)
    service = metrics_service(9100, registry)        # an IService listening on :9100, path /metrics
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Dict, List, Optional, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.application import internet
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

log = Logger()
#: How long one rendering answers every scrape.
CACHE_SECONDS = 1.0

__all__ = ["CallbackCollector", "MetricsResource", "metrics_service", "metrics_site", "new_registry"]


def new_registry() -> CollectorRegistry:
    """A fresh registry for one service (``auto_describe`` so duplicate names fail at registration)."""
    return CollectorRegistry(auto_describe=True)


class _Collected:
    """The metric families of one collection, in the shape the encoders read (a registry's ``collect``)."""

    def __init__(self, families: List) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


class CachedRenderer:
    """The registry's text per format: collected on the reactor thread, written in a thread (``in_thread``),
    reused for ``cache_seconds``; callers that come while it is being made share that one rendering.

    A format is known by its content type (``choose_encoder`` makes a new encoder object for OpenMetrics at
    every call, which Prometheus asks for by default); at most ``MAX_FORMATS`` are kept.
    """

    MAX_FORMATS = 8

    def __init__(self, registry: CollectorRegistry, reactor=None, cache_seconds: float = CACHE_SECONDS,
                 in_thread: Optional[Callable[[Callable[[], bytes]], defer.Deferred]] = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.registry = registry
        self.reactor = reactor
        self.cache_seconds = cache_seconds
        self.in_thread = in_thread or (lambda fn: threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn))
        self.cached: Dict[str, Tuple[float, bytes]] = {}
        self.waiting: Dict[str, List[defer.Deferred]] = {}
        #: renderings made (tests and benchmarks read it)
        self.renders = 0

    def render(self, encoder: Callable, content_type: str = "") -> defer.Deferred:
        """A Deferred of the registry's text in ``encoder``'s format, which ``content_type`` names."""
        key = content_type
        now = self.reactor.seconds()
        hit = self.cached.get(key)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return defer.succeed(hit[1])
        d: defer.Deferred = defer.Deferred()
        waiters = self.waiting.get(key)
        if waiters is not None:
            waiters.append(d)
            return d
        self.waiting[key] = [d]
        self.renders += 1
        try:
            collected = _Collected(list(self.registry.collect()))
            made = self.in_thread(lambda: encoder(collected))
        except Exception:
            made = defer.fail()

        def done(result):
            waiters = self.waiting.pop(key, [])
            if isinstance(result, bytes):
                self.cached.pop(key, None)
                self.cached[key] = (now, result)
                while len(self.cached) > self.MAX_FORMATS:
                    del self.cached[next(iter(self.cached))]
            else:
                log.failure("rendering the metrics failed", result)
            for w in waiters:
                if isinstance(result, bytes):
                    w.callback(result)
                else:
                    w.errback(result)

        made.addBoth(done)
        return d


class MetricsResource(Resource):
    """Renders a registry in the Prometheus text format (or OpenMetrics when the scraper asks for it)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, renderer: Optional[CachedRenderer] = None) -> None:
        super().__init__()
        self.registry = registry
        self.renderer = renderer or CachedRenderer(registry)

    def render_GET(self, request):
        accept = request.getHeader("accept") or ""
        encoder, content_type = choose_encoder(accept)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        finished = request.notifyFinish()
        gone: list = []
        finished.addErrback(gone.append)

        def write(body: bytes) -> None:
            if gone:
                return
            request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
            if request.method != b"HEAD":
                request.write(body)
            request.finish()

        def failed(failure) -> None:
            if not gone:
                request.setResponseCode(500)
                request.write(b"rendering the metrics failed\n")
                request.finish()

        self.renderer.render(encoder, content_type).addCallbacks(write, failed)
        return NOT_DONE_YET

    render_HEAD = render_GET


def metrics_site(registry: CollectorRegistry, path: bytes = b"metrics",
                 renderer: Optional[CachedRenderer] = None) -> Site:
    """A web ``Site`` with the registry at ``/metrics`` (and at ``/`` for convenience)."""
    root = Resource()
    resource = MetricsResource(registry, renderer)
    root.putChild(path, resource)
    root.putChild(b"", resource)
    site = Site(root)
    site.noisy = False
    return site


def metrics_service(port: int, registry: CollectorRegistry, interface: str = "", reactor=None):
    """An ``IService`` serving ``registry`` over HTTP on ``port`` (add it to the service's MultiService)."""
    site = metrics_site(registry, renderer=CachedRenderer(registry, reactor))
    return internet.TCPServer(port, site, interface=interface, reactor=reactor)


class CallbackCollector:
    """A custom collector whose metric families come from a callable, evaluated at each scrape.

    For gauges that mirror live state (consumer lag, disk use): ``registry.register(CallbackCollector(fn))``
    where ``fn()`` yields ``prometheus_client.core`` metric families.
    """

    def __init__(self, collect: Callable[[], Iterable], describe: Callable[[], Iterable] | None = None) -> None:
        self._collect = collect
        self._describe = describe

    def collect(self):
        return self._collect()

    def describe(self):
        # Without a describe, auto_describe would call collect() at registration: give it nothing instead.
        return self._describe() if self._describe is not None else []
