"""SlaveSynchronize: a slave copies its master's topics, consumer offsets, delay offsets and groups.

Every ``slaveSyncInterval`` (RocketMQ: 10 s) the slave asks the master it learned from its NameServer
registration (``masterAddr``) with GET_ALL_TOPIC_CONFIG (21), GET_ALL_CONSUMER_OFFSET (43),
GET_ALL_DELAY_OFFSET (45) and GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), as RocketMQ's slave does:

* topics and subscription groups: replaced wholesale when the master's data version differs;
* consumer offsets: the master's entries overwrite the slave's (entries only the slave has stay);
* delay offsets: into the slave's ``ScheduleMessageService`` table and ``config/delayOffset.json``.

Each table is persisted after it changes. A failed call is logged and retried at the next round.
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.internet import defer, task
from twisted.logger import Logger

from mq.common import fastjson
from mq.common.configfile import write_atomically
from mq.common.route import DataVersion
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

log = Logger()


class SlaveSynchronize:
    def __init__(self, broker, interval_ms: int, timeout: float = 3.0) -> None:
        self.broker = broker
        self.interval = interval_ms / 1000.0
        self.timeout = timeout
        self.rounds = 0
        self.last_error: Optional[str] = None
        self._loop: Optional[task.LoopingCall] = None
        self._running = None

    def start(self) -> None:
        self._loop = task.LoopingCall(self.sync_all)
        self._loop.clock = self.broker.reactor
        self._loop.start(self.interval, now=False).addErrback(lambda f: log.failure("slave sync timer", f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _call(self, code: int) -> defer.Deferred:
        request = RemotingCommand.request(code, {})
        return self.broker.outer_api.client.invoke(self.broker.master_addr, request, self.timeout)

    @defer.inlineCallbacks
    def sync_all(self):
        """One round; skipped while the master is unknown or the previous round still runs."""
        addr = self.broker.master_addr
        if not addr or self._running is not None:
            return
        self._running = addr
        try:
            for code, apply in (
                (RequestCode.GET_ALL_TOPIC_CONFIG, self._topics),
                (RequestCode.GET_ALL_CONSUMER_OFFSET, self._offsets),
                (RequestCode.GET_ALL_DELAY_OFFSET, self._delay_offsets),
                (RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, self._groups),
            ):
                try:
                    response = yield self._call(code)
                except Exception as e:  # noqa: BLE001 - a master that is down: try again next round
                    self.last_error = f"{code}: {e}"
                    log.debug("slave sync from {addr}: code {code} failed: {e}", addr=addr, code=code, e=e)
                    return
                if response.code != ResponseCode.SUCCESS:
                    if code != RequestCode.GET_ALL_DELAY_OFFSET:
                        log.warn("slave sync: the master answered code {code} with {rc} {remark}", code=code,
                                 rc=response.code, remark=response.remark)
                    continue
                try:
                    apply(fastjson.loads(response.body) if response.body else {}, response.body)
                except (ValueError, TypeError, KeyError, AttributeError) as e:
                    log.warn("slave sync: cannot use the master's answer to code {code}: {e}", code=code, e=e)
            self.rounds += 1
            self.last_error = None
        finally:
            self._running = None

    @staticmethod
    def _replace(manager, data: dict) -> bool:
        """Take the master's table wholesale when its data version differs (topics, groups)."""
        if DataVersion.from_json(data.get("dataVersion")) == manager.data_version:
            return False
        kept = dict(manager.table)
        manager.table.clear()
        try:
            manager.decode(data)
        except BaseException:  # the caller logs it; the slave keeps the table it had, not an empty one
            manager.table.clear()
            manager.table.update(kept)
            raise
        manager.persist()
        return True

    def _topics(self, data: dict, raw: bytes) -> None:
        if self._replace(self.broker.topic_config_manager, data):
            log.info("slave sync: {n} topics from the master", n=len(self.broker.topic_config_manager.table))

    def _groups(self, data: dict, raw: bytes) -> None:
        self._replace(self.broker.subscription_group_manager, data)

    def _offsets(self, data: dict, raw: bytes) -> None:
        manager = self.broker.consumer_offset_manager
        before = {k: dict(v) for k, v in manager.table.items()}
        mine = manager.table
        manager.decode(data)
        merged = dict(mine)
        merged.update(manager.table)
        manager.table = merged
        if merged != before:
            manager.persist()

    def _delay_offsets(self, data: dict, raw: bytes) -> None:
        schedule = getattr(self.broker, "schedule_service", None)
        if schedule is not None and hasattr(schedule, "decode"):
            schedule.decode(data)
            schedule.persist()
            return
        path = os.path.join(self.broker.config.config_dir, "delayOffset.json")
        write_atomically(path, raw.decode("utf-8"))
