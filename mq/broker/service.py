"""BrokerService: one broker as a Twisted ``MultiService`` (listening ports, timers, store, managers).

``make_broker_service(config, reactor)`` builds it; ``twistd broker`` (``mq.broker.tap``) and the standalone
``twistd mq`` both use it. All state lives on the reactor thread; time comes from the injected reactor.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.application import internet, service
from twisted.internet import defer, task
from twisted.logger import Logger

from mq.acl.service import AclService
from mq.acl.signing import Credentials
from mq.acl.store import AclStore, acl_paths
from mq.acl.validator import AccessValidator
from mq.broker.client.broker2client import Broker2Client
from mq.broker.client.manager import ConsumerManager, ProducerManager
from mq.broker.client.rebalance_lock import RebalanceLockManager, RebalanceLockProcessor
from mq.broker.config import RUNTIME_KEYS, BrokerConfig, save_runtime_changes
from mq.broker.dledger import metrics as dledger_metrics
from mq.broker.dledger.group import DLedgerGroup
from mq.broker.dledger.settings import DLedgerSettings
from mq.broker.dledger.transport import LEADERSHIP_TRANSFER, RAFT_PORT_CODES
from mq.broker.ha.master import HAConfig, HAService
from mq.broker.ha.slave import HASlave
from mq.broker.ha.slave_sync import SlaveSynchronize
from mq.broker.longpolling.pull_hold import PullRequestHoldService
from mq.broker.offset.consumer_offset import ConsumerOffsetManager
from mq.broker.outer_api import BrokerOuterAPI
from mq.broker.processor.acl import AclAdminProcessor
from mq.broker.processor.admin import AdminBrokerProcessor
from mq.broker.processor.broker_stats import BrokerStatsProcessor
from mq.broker.processor.client_manage import ClientManageProcessor
from mq.broker.processor.consumer_manage import ConsumerManageProcessor
from mq.broker.processor.name_guard import guard_names
from mq.broker.processor.pull import PullMessageProcessor
from mq.broker.processor.query import QueryMessageProcessor
from mq.broker.processor.reply import ReplyMessageProcessor
from mq.broker.processor.retry import ConsumerSendBackProcessor, redirect_to_dlq
from mq.broker.processor.send import SendMessageProcessor
from mq.broker.processor.store_admin import StoreAdminProcessor
from mq.broker.schedule.delay_level import ScheduleMessageService
from mq.broker.schedule.timer import TIMER_SEND_KEYS, TimerMessageService
from mq.broker.stats import exporter
from mq.broker.stats.client_metrics import ClientMetrics
from mq.broker.stats.items import SAMPLE_SECONDS
from mq.broker.stats.metrics import BrokerStats
from mq.broker.stats.runtime import RuntimeStats
from mq.broker.stats.runtime_info import runtime_table
from mq.broker.subscription.group import SubscriptionGroupManager
from mq.broker.topic.manager import TopicConfigManager
from mq.broker.transaction.service import TransactionalMessageService, is_half_send
from mq.common.config import shown
from mq.common.hotcache import PYPY
from mq.common.message import MessageConst
from mq.common.mixall import RETRY_GROUP_TOPIC_PREFIX
from mq.common.route import DataVersion, TopicConfig
from mq.metrics import metrics_service
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode
from mq.remoting.limits import ConnectionLimits
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.server import LISTEN_BACKLOG, RemotingServerFactory
from mq.store.config import BrokerRole
from mq.store.store import MessageStore

log = Logger()

#: The properties some send hook acts on (delay level, transaction half, the timer's keys and its own mark);
#: ``prepare_inner`` skips the hooks for a message with none of them to a topic that is not a retry topic.
PREPARED_KEYS = frozenset((MessageConst.PROPERTY_DELAY_TIME_LEVEL, MessageConst.PROPERTY_TRANSACTION_PREPARED,
                           *TIMER_SEND_KEYS))


class _WithoutPull:
    """The main processor table seen from the VIP port: everything but PULL_MESSAGE, kept in step."""

    def __init__(self, table: dict) -> None:
        self.table = table

    def get(self, code: int, default=None):
        return default if code == RequestCode.PULL_MESSAGE else self.table.get(code, default)

    def __setitem__(self, code: int, processor) -> None:
        self.table[code] = processor


#: What ``RuntimeStats`` samples, in the order ``BrokerService._running_totals`` returns it.
_RUNNING_TOTALS = ("put", "getTransferred", "getTimes", "getFound", "getMiss", "msgPut", "msgGet")


class BrokerService(service.MultiService):
    def __init__(self, config: BrokerConfig, reactor=None, store: Optional[MessageStore] = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.reactor = reactor
        self.now_ms = lambda: int(reactor.seconds() * 1000)
        dledger = DLedgerSettings.from_broker_config(config)
        if dledger is not None:  # a slave until elected (RocketMQ ignores the configured id and role)
            config.broker_id, config.broker_role = dledger.slave_id, BrokerRole.SLAVE
        self.stats = BrokerStats(config.broker_cluster_name, reactor.seconds, lambda: config.max_stats_keys)
        self.store = store or MessageStore(config.store_config(), reactor, store_host=config.store_host)
        self.boot_timestamp = self.now_ms()
        self.runtime_stats = RuntimeStats(_RUNNING_TOTALS, self._running_totals, reactor.seconds)
        self.topic_config_manager = TopicConfigManager(config, self.now_ms)
        self.subscription_group_manager = SubscriptionGroupManager(config, self.now_ms)
        self.consumer_offset_manager = ConsumerOffsetManager(config)
        self.topic_config_manager.known_group = lambda group: group in self.subscription_group_manager.table
        self.topic_config_manager.run_blocking = self.store.run_blocking
        self._state_loaded = False
        self.consumer_manager = ConsumerManager(self.now_ms, config.channel_expired_timeout)
        self.producer_manager = ProducerManager(self.now_ms, config.channel_expired_timeout)
        self.broker2client = Broker2Client()
        # The broker signs what it sends as a client (registrations, a slave's sync with its master) when it
        # has an account; its calls back to clients on their own connections are not signed, as in RocketMQ.
        credentials = self.credentials = broker_credentials(config)
        self.outer_api = BrokerOuterAPI(reactor, RemotingClient(
            reactor, signer=credentials.sign_request if credentials is not None else None))
        self.config_data_version = DataVersion()
        #: The master's address, learned from REGISTER_BROKER answers (slaves only).
        self.master_addr: Optional[str] = None
        self.ha_master_addr: Optional[str] = None
        self.transaction_service = TransactionalMessageService(self)
        self.schedule_service = ScheduleMessageService(self)
        self.timer_service = TimerMessageService(self)
        self.rebalance_lock_manager = RebalanceLockManager(self.now_ms, lambda: config.rebalance_lock_max_live_time)

        self.pull_processor = PullMessageProcessor(self)
        self.pull_hold_service = PullRequestHoldService(reactor, self.pull_processor.rerun,
                                                        lambda: config.pull_hold_max_per_connection)
        self.topic_config_manager.on_created = self._topic_created
        self.consumer_manager.on_group_changed = self.broker2client.notify_consumer_ids_changed
        self.store.message_arriving_listener = self._message_arrived

        self.dispatcher = RequestDispatcher()
        self.send_processor = SendMessageProcessor(self)
        for processor in (
            self.send_processor,
            self.pull_processor,
            ClientManageProcessor(self),
            ConsumerManageProcessor(self),
            AdminBrokerProcessor(self),
            BrokerStatsProcessor(self),
            QueryMessageProcessor(self),
            StoreAdminProcessor(self),
            ReplyMessageProcessor(self),
            ConsumerSendBackProcessor(self),
            self.schedule_service,
            self.transaction_service,
            RebalanceLockProcessor(self),
            # ACL admin codes 50-54: the store is looked up per request (None while ACL is off).
            AclAdminProcessor(lambda: self.acl.store if self.acl is not None else None, config,
                              config.rocketmq_home),
        ):
            processor.register(self.dispatcher)
        guard_names(self.dispatcher)
        limits = ConnectionLimits.from_config(config)
        self.factory = RemotingServerFactory(self.dispatcher, reactor, limits=limits)
        self.factory.on_disconnect.append(self._channel_closed)
        self.factories = [self.factory]
        iface = config.bind_address
        internet.TCPServer(config.listen_port, self.factory, interface=iface, backlog=LISTEN_BACKLOG,
                           reactor=reactor).setServiceParent(self)
        if config.fast_listen_enable and config.listen_port > 2:
            # The VIP port serves every code but PULL_MESSAGE, as RocketMQ's fast remoting server does.
            fast = RequestDispatcher()
            fast.processors = _WithoutPull(self.dispatcher.processors)
            fast_factory = RemotingServerFactory(fast, reactor, limits=limits, share_with=self.factory)
            fast_factory.on_disconnect.append(self._channel_closed)
            self.factories.append(fast_factory)
            internet.TCPServer(config.listen_port - 2, fast_factory, interface=iface, backlog=LISTEN_BACKLOG,
                               reactor=reactor).setServiceParent(self)
        #: ACL 1.0 (docs/acl.md): the check runs before every processor, on the VIP port too.
        self.acl: Optional[AclService] = None
        if config.acl_enable:
            self.acl = AclService(config.rocketmq_home, config.acl_file, reactor)
            self.acl.setServiceParent(self)
            for factory in self.factories:
                factory.dispatcher.access_check = self.acl.validator
        if config.metrics_port:
            metrics_service(config.metrics_port, self.stats.registry, iface, reactor).setServiceParent(self)
        # Replication (docs/replication.md): a master serves the HA port; a slave follows its master.
        self.ha_config = HAConfig.from_broker_config(config)
        self.ha = HAService(self, self.ha_config)
        self.ha_slave = HASlave(self, self.ha_config) if config.is_slave and dledger is None else None
        self.slave_sync = SlaveSynchronize(self, self.ha_config.slave_sync_interval) if config.is_slave else None
        if not config.is_slave:
            self.ha.server(iface).setServiceParent(self)
        #: DLedger mode (docs/replication.md): the Raft group decides this broker's role.
        self.dledger: Optional[DLedgerGroup] = None
        if dledger is not None:
            self.dledger = DLedgerGroup(self, dledger,
                                        signer=credentials.sign_request if credentials is not None else None)
            if self.acl is not None:
                # a forged vote or append could depose the leader or rewrite the log: admin accounts only
                self.dledger.transport.guard(AccessValidator(self.acl.store, RAFT_PORT_CODES))
            self.store.replicator = self.dledger
            internet.TCPServer(dledger.port, self.dledger.transport.factory, interface=iface,
                               backlog=LISTEN_BACKLOG, reactor=reactor).setServiceParent(self)
            self.dispatcher.register(LEADERSHIP_TRANSFER, self.dledger.process_transfer)
            self.stats.gauges.append(lambda: dledger_metrics.collect(self.dledger))
        self.stats.gauges.append(self._gauges)
        self.client_metrics = ClientMetrics(self)
        self.stats.gauges.append(lambda: exporter.collect(self))
        self.stats.gauges.append(self.ha.gauges)
        self.stats.gauges.append(self.timer_service.metrics)
        self._loops: Dict[str, task.LoopingCall] = {}
        self._saving: Optional[defer.Deferred] = None

    # -- message semantics (retry/DLQ, delay levels, transactions) ----------------------------------

    def prepare_inner(self, inner, header):
        """Last look at a message before it is stored: retry → DLQ, delay levels, half messages go here.

        Returns the message to store, or a refusal (``code`` and ``remark``: a TimerRefusal) to answer with.
        A message to a topic that is not a retry topic, with none of ``PREPARED_KEYS`` (the usual one), is
        returned as it is without the hooks' calls: what ``prepare_hooks`` would return for it (tested).
        """
        if PREPARED_KEYS.isdisjoint(inner.properties) and not inner.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return inner
        return self.prepare_hooks(inner, header)

    def prepare_hooks(self, inner, header):
        """``prepare_inner``'s general path: every hook asked in turn."""
        inner = redirect_to_dlq(self, inner, header.max_reconsume_times)
        if is_half_send(inner):
            refusal = self.timer_service.refusal(inner.properties)  # the commit parks it: refuse a bad time now
            return refusal or self.transaction_service.prepare(inner, header.producer_group)
        return self.park(inner)

    if PYPY:  # the JIT makes the hooks' own tests cheaper than the shortcut's set test (0.03-0.06 µs against 0.14)
        prepare_inner = prepare_hooks  # noqa: F811

    def park(self, inner):
        """Delay levels first (a level wins and drops the timer properties), then timer messages: the
        message to store, or a TimerRefusal."""
        return self.timer_service.park(self.schedule_service.park(inner))

    def accepts_transactions(self) -> bool:
        return self.transaction_service is not None and not self.config.reject_transaction_message

    # -- life cycle --------------------------------------------------------------------------------

    def load_state(self) -> None:
        """Read topics, subscription groups, offsets and delay offsets; StateFileError (one line) when a file is there but
        cannot be used, before anything is saved over it. Done by ``make_broker_service`` so that the taps turn
        it into a refusal, else at start."""
        if self._state_loaded:
            return
        for manager in (self.topic_config_manager, self.subscription_group_manager, self.consumer_offset_manager,
                        self.schedule_service):  # (the timer wheel's checkpoint is rebuilt when it is lost)
            manager.load(strict=True)
        self._state_loaded = True

    def startService(self) -> None:
        c = self.config
        self.load_state()
        self.topic_config_manager.persist()
        self.store.start()
        if self.dledger is not None:
            self.dledger.start()
        self.schedule_service.start()
        self.timer_service.start()
        self.transaction_service.start()
        super().startService()
        if self.ha_slave is not None:
            self.ha_slave.start()
            self.slave_sync.start()
        elif self.dledger is None:
            self.ha.start()
        self._every("register", c.register_period_seconds, self._register_periodically, now=True)
        self._every("offsets", c.flush_consumer_offset_interval / 1000.0, self.consumer_offset_manager.persist_if_dirty)
        self._every("clients", 10.0, self._scan_clients)
        self._every("rebalance-locks", 10.0, self.rebalance_lock_manager.prune)
        self._every("auto-created", 1.0, self._save_auto_created)
        self._every("stats", 1.0, self.runtime_stats.sample)
        self._every("stats-items", SAMPLE_SECONDS, self.stats.items.sample, now=True)
        self._every("put-latency-minute", 60.0, self.stats.put_latency.minute.roll)
        self._every("client-metrics", c.client_metrics_interval, self.client_metrics.poll)
        log.info(
            "mq broker {name} of cluster {cluster} (id {id}, {role}, {flush}) serving at {addr}"
            "{fast}; store {store}; NameServers {ns}; metrics {metrics}",
            name=c.broker_name, cluster=c.broker_cluster_name, id=c.broker_id, role=c.broker_role.value,
            flush=c.flush_disk_type.value, addr=c.broker_addr,
            fast=f" (VIP port {c.listen_port - 2})" if c.fast_listen_enable else "",
            store=c.store_path_root_dir, ns=c.namesrv_addr or "(none)",
            metrics=f"http://{c.broker_ip1}:{c.metrics_port}/metrics" if c.metrics_port else "off",
        )

    def _every(self, name: str, seconds: float, fn, now: bool = False) -> None:
        """Run ``fn`` every ``seconds`` until the broker stops; a timer of the same name is replaced."""
        old = self._loops.pop(name, None)
        if old is not None and old.running:
            old.stop()
        loop = task.LoopingCall(fn)
        loop.clock = self.reactor
        loop.start(seconds, now=now).addErrback(lambda f: log.failure("timer {fn} stopped", f, fn=fn))
        self._loops[name] = loop

    def _reschedule(self, name: str, seconds: float) -> None:
        """A timer's interval changed at run time: it next runs ``seconds`` from now, then every ``seconds``."""
        loop = self._loops.get(name)
        if loop is not None and loop.running:
            self._every(name, seconds, loop.f)

    @defer.inlineCallbacks
    def stopService(self):
        log.info("broker {name} stopping: flushing the store, saving offsets, unregistering",
                 name=self.config.broker_name)
        if self.dledger is not None:
            yield self.dledger.hand_over()
        for loop in self._loops.values():
            if loop.running:
                loop.stop()
        self._loops = {}
        applied = self.dledger.stop() if self.dledger is not None else None
        yield defer.maybeDeferred(super().stopService)
        self.pull_hold_service.release_all()
        self.ha.stop()
        if self.slave_sync is not None:
            self.slave_sync.stop()
        if self.ha_slave is not None:
            self.ha_slave.stop()
        self.schedule_service.stop()
        self.timer_service.stop()
        self.transaction_service.stop()
        for factory in self.factories:
            for proto in list(factory.connections):
                proto.close()
        if self.config.namesrv_list:
            try:
                results = yield self.outer_api.unregister_broker_all(self.config.namesrv_list, self.config)
                for addr, code, remark in results:
                    if code != 0:
                        log.warn("unregistering from {addr} failed: {remark}", addr=addr, remark=remark)
            except Exception:
                log.failure("unregistering from the NameServers")
        if self._saving is not None:
            yield self._saving  # a save in a thread finishes before the last ones
        for manager in (self.consumer_offset_manager, self.topic_config_manager, self.subscription_group_manager):
            manager.persist()
        yield self.store.stop()
        if applied is not None:  # the CommitLog is flushed to its end now
            self.dledger.write_checkpoint(applied)
            yield self.dledger.close()
            yield self.dledger.transport.close()
        yield self.outer_api.close()
        log.info("broker {name} stopped", name=self.config.broker_name)

    # -- NameServers -------------------------------------------------------------------------------

    def _register_periodically(self) -> defer.Deferred:
        return self.register_broker_all()

    def register_broker_all(self, topics: Optional[Iterable[TopicConfig]] = None, oneway: bool = False):
        """Register with every NameServer (all topics, or just ``topics`` after a change)."""
        addrs = self.config.namesrv_list
        if not addrs:
            return defer.succeed([])
        body = self.topic_config_manager.register_body(topics)
        d = self.outer_api.register_broker_all(addrs, self.config, body, oneway,
                                               self.config.register_broker_timeout_mills / 1000.0)
        return d.addCallback(self._registered)

    def _registered(self, results):
        for addr, header, error in results:
            if error is not None:
                log.warn("registering with NameServer {addr} failed: {error}", addr=addr, error=error)
                continue
            if header is not None and self.config.is_slave and header.master_addr and self.dledger is None:
                if header.master_addr != self.master_addr:
                    log.info("master of {name} is {master} (HA {ha})", name=self.config.broker_name,
                             master=header.master_addr, ha=header.ha_server_addr)
                self.master_addr = header.master_addr
                self.ha_master_addr = header.ha_server_addr
        return results

    def _topic_created(self, tc: TopicConfig, oneway: bool) -> None:
        # Creations from sends and heartbeats are announced at once (oneway, as RocketMQ does);
        # UPDATE_AND_CREATE_TOPIC registers itself and waits for the answers before it replies.
        if oneway and self.running:
            self.register_broker_all([tc], oneway=True)

    # -- events ------------------------------------------------------------------------------------

    def _message_arrived(self, topic, queue_id, logic_offset, tags_code, store_timestamp, properties) -> None:
        self.pull_hold_service.notify_message_arriving(topic, queue_id, logic_offset + 1, tags_code)
        self.ha.notify()

    def _save_auto_created(self) -> Optional[defer.Deferred]:
        """Topics and groups that heartbeats and pulls created: saved once a second at most, not one by one,
        and written (encoded, fsynced) off the reactor thread, so that a flood of new groups does not stall
        the sends of everyone else."""
        managers = [m for m in (self.topic_config_manager, self.subscription_group_manager) if m.dirty]
        if not managers:
            return None
        writes = [m.snapshot() for m in managers]

        def failed(failure) -> None:
            for m in managers:
                m.dirty = True
            log.warn("saving auto-created topics and groups failed (tried again in a second): {error}",
                     error=failure.getErrorMessage())

        self._saving = self.store.run_blocking(lambda: [write() for write in writes]).addErrback(failed)
        return self._saving

    def _channel_closed(self, channel) -> None:
        self.consumer_manager.channel_closed(channel)
        self.producer_manager.channel_closed(channel)
        self.pull_hold_service.channel_closed(channel)

    def _scan_clients(self) -> None:
        for channel in self.consumer_manager.scan_expired() + self.producer_manager.scan_expired():
            close = getattr(channel, "close", None)
            if close is not None and getattr(channel, "connected", False):
                close()

    # -- config ------------------------------------------------------------------------------------

    def update_config(self, props: Dict[str, str]) -> Dict[str, str]:
        """UPDATE_BROKER_CONFIG: apply the keys that may change while running and save them in
        ``<storePathRootDir>/config/broker.properties``; refuse the others. An OSError means the change is applied
        but not saved."""
        known = self.config.known_keys()
        unknown = sorted(k for k in props if k not in known)
        if unknown:
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(f"unknown settings (the body is java.util.Properties text of broker.conf keys): "
                             f"{', '.join(shown(k) for k in unknown[:10])}{more}")
        fixed = sorted(k for k in props if k not in RUNTIME_KEYS)
        if fixed:
            raise ValueError(f"these settings cannot change while the broker runs: {', '.join(fixed)}")
        changed = self.config.update(props, live=True)
        if changed:
            self.config_data_version.next_version(self.now_ms())
            self._apply_config(changed)
            log.info("broker config changed: {changed}", changed=changed)
            # Saved at once, so the change survives a restart (docs/broker.md, Settings changed at run time).
            path = save_runtime_changes(self.config.store_path_root_dir, changed)
            log.info("runtime settings saved in {path}", path=path)
        return changed

    def _apply_config(self, changed: Dict[str, str]) -> None:
        """Make runtime changes reach where their values were copied or scheduled. (The rest, such as
        shortPollingTimeMills, maxMessageSize at the send check or namesrvAddr, are read from the config at
        each use.)"""
        c = self.config
        self.consumer_manager.timeout = self.producer_manager.timeout = c.channel_expired_timeout
        self.store.config.max_message_size = c.max_message_size
        if "flushConsumerOffsetInterval" in changed:
            self._reschedule("offsets", c.flush_consumer_offset_interval / 1000.0)
        if "registerNameServerPeriod" in changed:
            self._reschedule("register", c.register_period_seconds)
        if "brokerPermission" in changed and self.running:
            self.register_broker_all()  # routes show the new permission at once, as RocketMQ does

    # -- figures -----------------------------------------------------------------------------------

    def _running_totals(self):
        c = self.store.stats_counters
        stats = self.stats
        return (c.put_message_times_total, c.get_message_transferred_total, c.get_message_times_total,
                c.get_message_found_total, c.get_message_times_total - c.get_message_found_total,
                stats.put_total, stats.get_total)  # fmt: skip

    def runtime_info(self) -> Dict[str, str]:
        return runtime_table(self)

    def _gauges(self):
        s = self.store.stats()
        for name, doc, value in (
            ("mq_broker_store_disk_used_ratio", "Fraction of the store's disk in use", s.disk_used_ratio),
            ("mq_broker_flush_behind_bytes", "CommitLog bytes written but not yet flushed",
             max(0, s.commit_log_max_offset - s.flushed_offset)),
            ("mq_broker_dispatch_behind_bytes", "CommitLog bytes not yet in consume queues", s.dispatch_behind_bytes),
            ("mq_broker_commitlog_max_offset", "CommitLog end offset", s.commit_log_max_offset),
            ("mq_broker_long_poll_holds", "Pull requests held by long polling now", self.pull_hold_service.count),
            ("mq_broker_connections", "Open client connections", sum(len(f.connections) for f in self.factories)),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        for name, doc, value in (
            ("mq_broker_long_poll_woken_by_arrival", "Held pulls answered because a message arrived",
             self.pull_hold_service.woken_by_arrival),
            ("mq_broker_long_poll_woken_by_timeout", "Held pulls answered when their hold ran out",
             self.pull_hold_service.woken_by_timeout),
        ):
            yield CounterMetricFamily(name, doc, value=value)


def broker_credentials(config: BrokerConfig) -> Optional[Credentials]:
    """The broker's own account (``accessKey``/``secretKey``), None without one; ValueError for half of one."""
    return Credentials.from_options(config.access_key, config.secret_key, environ={})


def check_acl_settings(config: BrokerConfig) -> Optional[AclStore]:
    """Before a start: the broker's account is whole and, with ACL on, every ACL file loads; the loaded files
    (None with ACL off), for a caller with more to check in them.

    Raises ValueError with one line saying what is wrong (the tap turns it into a usage error).
    """
    credentials = broker_credentials(config)
    if not config.acl_enable:
        return None
    store = AclStore(*acl_paths(config.rocketmq_home, config.acl_file))
    store.load()
    if config.enable_d_leger_commit_log and credentials is None:
        raise ValueError("aclEnable with enableDLegerCommitLog needs the broker's own accessKey and secretKey (an "
                         "admin account of the ACL file): its peers refuse Raft messages it does not sign")
    return store


def make_broker_service(config: BrokerConfig, reactor=None) -> BrokerService:
    """The broker, its state files read (StateFileError when one cannot be used)."""
    broker = BrokerService(config, reactor)
    broker.load_state()
    return broker
