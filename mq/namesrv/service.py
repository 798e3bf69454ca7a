"""``NamesrvService``: the NameServer's lifecycle (listen, scan silent brokers, serve metrics, stop)."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from prometheus_client import Counter, Gauge, Histogram
from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from mq.acl.service import AclService
from mq.metrics import CallbackCollector, metrics_service, new_registry
from mq.namesrv.acl import NamesrvAccessCheck
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.kvconfig import KVConfigManager
from mq.namesrv.processor import NamesrvProcessor
from mq.namesrv.routeinfo import RouteInfoManager
from mq.remoting.codes import RequestCode, ResponseCode, code_name
from mq.remoting.limits import ConnectionLimits
from mq.remoting.memo import ResponseMemo
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.server import LISTEN_BACKLOG, RemotingServerFactory

log = Logger()


#: The label of every code no RocketMQ version defines (``UNKNOWN(-1)``): a peer sending made-up codes adds one
#: series, not one per code.
UNKNOWN_CODE = -1


def _known(code: int, table) -> int:
    try:
        table(code)
    except ValueError:
        return UNKNOWN_CODE
    return code


class NamesrvMetrics:
    """The NameServer's Prometheus series, in the service's own registry."""

    def __init__(self, routes: RouteInfoManager) -> None:
        self.registry = new_registry()
        r = self.registry
        r.register(CallbackCollector(self._flush_memo_hits))  # before the counter: it collects first
        self.requests = Counter(
            "mq_namesrv_requests", "Requests handled, by request code and response code", ["request", "response"], registry=r
        )
        self.latency = Histogram(
            "mq_namesrv_request_seconds",
            "Time to handle a request, by request code",
            ["request"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
            registry=r,
        )
        self.brokers_expired = Counter("mq_namesrv_brokers_expired", "Brokers dropped for silence", registry=r)
        brokers = Gauge("mq_namesrv_brokers", "Brokers registered (live)", registry=r)
        brokers.set_function(lambda: len(routes.broker_live_table))
        topics = Gauge("mq_namesrv_topics", "Topics with routes", registry=r)
        topics.set_function(lambda: len(routes.topic_queue_table))
        clusters = Gauge("mq_namesrv_clusters", "Clusters with brokers", registry=r)
        clusters.set_function(lambda: len(routes.cluster_addr_table))
        self._request_counters: dict = {}
        self._memo: Optional[ResponseMemo] = None

    def count_memo_answers(self, memo: ResponseMemo) -> None:
        """Requests answered from ``memo`` skip the dispatcher; they are added to the request counter at each
        scrape (a collector registered before the counter runs first)."""
        self._memo = memo

    def _flush_memo_hits(self) -> tuple:
        """Move the memo's answer counts into the request counter; no metric family of its own."""
        memo = self._memo
        if memo is not None:
            hits, memo.hits = memo.hits, {}
            for codes, n in hits.items():
                self._counter(*codes).inc(n)
        return ()

    def observe(self, request_code: int, response_code: int) -> None:
        self._counter(request_code, response_code).inc()

    def _counter(self, request_code: int, response_code: int):
        # Label lookups cost more than the increment: keep one child per (request, response) pair.
        counter = self._request_counters.get((request_code, response_code))
        if counter is None:
            request, response = _known(request_code, RequestCode), _known(response_code, ResponseCode)
            if (request, response) != (request_code, response_code):  # a code no RocketMQ version has
                return self._counter(request, response)
            counter = self.requests.labels(code_name(request_code), code_name(response_code, response=True))
            self._request_counters[(request_code, response_code)] = counter
        return counter

    def timed(self, code: int, handler):
        observe = self.latency.labels(code_name(_known(code, RequestCode))).observe
        clock = time.perf_counter

        def timed_handler(request, channel):
            start = clock()
            try:
                return handler(request, channel)
            finally:
                observe(clock() - start)

        return timed_handler


class NamesrvService(service.MultiService):
    """A NameServer: brokers register with it, clients read routes from it. State lives in memory only."""

    def __init__(self, config: NamesrvConfig, reactor=None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        self.routes = RouteInfoManager(self._now_ms, int(config.broker_expiry * 1000))
        #: Read now, so a file over its bound stops ``twistd`` in makeService with one line (KVConfigError).
        self.kv = KVConfigManager(config.kv_config_path)
        self.kv.load()
        self.metrics = NamesrvMetrics(self.routes)
        self.dispatcher = RequestDispatcher(observer=self.metrics.observe)
        self.processor = NamesrvProcessor(self.routes, self.kv, config)
        self.processor.on_config_changed = self.config_changed
        self.processor.register(self.dispatcher, self.metrics.timed)
        # Route queries repeat (every client, every topic, every 30 s): answered from memory between changes.
        self.memo = ResponseMemo([RequestCode.GET_ROUTEINFO_BY_TOPIC], self.processor.route_state)
        self.metrics.count_memo_answers(self.memo)
        #: ACL on writes (mq.namesrv.acl): the accounts are loaded now, a bad file stops the start.
        self.acl: Optional[AclService] = None
        if config.acl_enable:
            self.acl = AclService(config.rocketmq_home, config.acl_file, reactor)
            self.acl.setServiceParent(self)
            self.dispatcher.access_check = NamesrvAccessCheck(self.acl.validator)
        self.factory = RemotingServerFactory(self.dispatcher, reactor, memo=self.memo,
                                             limits=ConnectionLimits.from_config(config, default_share=0.9))
        self.factory.on_disconnect.append(self.routes.on_channel_closed)
        self.port = None
        self._scan: Optional[task.LoopingCall] = None
        if config.metrics_port:
            metrics_service(config.metrics_port, self.metrics.registry, config.interface, reactor).setServiceParent(self)

    def _now_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def config_changed(self, changed: Dict[str, Any]) -> None:
        """UPDATE_NAMESRV_CONFIG took effect: the expiry applies at the next scan, a new scan interval now."""
        self.routes.broker_expiry_ms = int(self.config.broker_expiry * 1000)
        scan = self._scan
        if scan is not None and scan.running and scan.interval != self.config.scan_interval:
            self._scan.stop()
            self._start_scan()

    def _start_scan(self) -> None:
        self._scan = task.LoopingCall(self.scan_not_active_brokers)
        self._scan.clock = self.reactor
        self._scan.start(self.config.scan_interval, now=False).addErrback(
            lambda f: log.failure("broker scan stopped", f)
        )

    def scan_not_active_brokers(self) -> None:
        expired = self.routes.scan_not_active_brokers()
        if expired:
            self.metrics.brokers_expired.inc(len(expired))

    def startService(self) -> None:
        self.port = self.reactor.listenTCP(self.config.listen_port, self.factory, interface=self.config.interface,
                                           backlog=LISTEN_BACKLOG)
        address = self.port.getHost()
        log.info(
            "NameServer listening on {host}:{port} (KV config {kv}, scan every {scan:g} s, broker expiry {expiry:g} s)",
            host=address.host,
            port=address.port,
            kv=self.config.kv_config_path,
            scan=self.config.scan_interval,
            expiry=self.config.broker_expiry,
        )
        self._start_scan()
        if self.config.metrics_port:
            log.info(
                "NameServer metrics on http://{host}:{port}/metrics",
                host=self.config.interface or "0.0.0.0",
                port=self.config.metrics_port,
            )
        super().startService()

    def stopService(self):
        if self._scan is not None and self._scan.running:
            self._scan.stop()
        self.kv.persist()
        for proto in list(self.factory.connections):
            proto.close()
        d = super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            listening = port.stopListening()
            log.info("NameServer stopped")
            return listening if d is None else d.addCallback(lambda _: listening)
        return d
