"""Prometheus metrics for the mq services: one ``CollectorRegistry`` per service, served over HTTP by Twisted.

Each service (NameServer, broker) owns its registry, so two services in one process (``twistd mq``) never
collide on metric names, and tests can read a service's figures without a global registry.

``prometheus_client.twisted.MetricsResource`` renders in the reactor's thread pool (it is a WSGI app). Our
collectors read service state that only the reactor thread mutates (routes, consumer offsets, store
counters), so rendering happens here on the reactor thread instead: ``generate_latest`` over a few hundred
series takes well under a millisecond, and nothing can observe a half-updated table.

Use::

    registry = new_registry()
    sends = Counter("mq_broker_messages_in", "...", ["topic"], registry=registry)
    service = metrics_service(9100, registry)        # an IService listening on :9100, path /metrics
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.application import internet
from twisted.web.resource import Resource
from twisted.web.server import Site

__all__ = ["CallbackCollector", "MetricsResource", "metrics_service", "metrics_site", "new_registry"]


def new_registry() -> CollectorRegistry:
    """A fresh registry for one service (``auto_describe`` so duplicate names fail at registration)."""
    return CollectorRegistry(auto_describe=True)


class MetricsResource(Resource):
    """Renders a registry in the Prometheus text format (or OpenMetrics when the scraper asks for it)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request) -> bytes:
        accept = request.getHeader("accept") or ""
        encoder, content_type = choose_encoder(accept)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        return encoder(self.registry)

    render_HEAD = render_GET


def metrics_site(registry: CollectorRegistry, path: bytes = b"metrics") -> Site:
    """A web ``Site`` with the registry at ``/metrics`` (and at ``/`` for convenience)."""
    root = Resource()
    resource = MetricsResource(registry)
    root.putChild(path, resource)
    root.putChild(b"", resource)
    site = Site(root)
    site.noisy = False
    return site


def metrics_service(port: int, registry: CollectorRegistry, interface: str = "", reactor=None):
    """An ``IService`` serving ``registry`` over HTTP on ``port`` (add it to the service's MultiService)."""
    return internet.TCPServer(port, metrics_site(registry), interface=interface, reactor=reactor)


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
