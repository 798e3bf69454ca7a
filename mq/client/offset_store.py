"""Consumer offsets: in the broker for clustering (``RemoteOffsetStore``), in a local file for broadcasting
(``LocalFileOffsetStore``). Both keep the current offsets in memory; ``persist`` writes them out (every 5 s
and at shutdown) and ``read(mq, from_store=True)`` loads one from where it is kept.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Iterable, Optional

from twisted.internet import defer
from twisted.logger import Logger

from mq.client.model import MessageQueue

log = Logger()


class OffsetStore:
    def __init__(self) -> None:
        self.table: Dict[MessageQueue, int] = {}

    def update(self, mq: MessageQueue, offset: int, increase_only: bool = False) -> None:
        if increase_only and self.table.get(mq, -1) >= offset:
            return
        self.table[mq] = offset

    def remove(self, mq: MessageQueue) -> None:
        self.table.pop(mq, None)

    def memory(self, mq: MessageQueue) -> int:
        return self.table.get(mq, -1)

    def read(self, mq: MessageQueue, from_store: bool = False) -> defer.Deferred:
        """The offset of ``mq`` (-1 when none is known), from memory or, with ``from_store``, the store."""
        raise NotImplementedError

    def persist(self, mqs: Iterable[MessageQueue]) -> defer.Deferred:
        raise NotImplementedError


class RemoteOffsetStore(OffsetStore):
    """Offsets committed to the broker that hosts each queue (UPDATE/QUERY_CONSUMER_OFFSET)."""

    def __init__(self, instance, group: str) -> None:
        super().__init__()
        self.instance = instance
        self.group = group

    def _addr(self, mq: MessageQueue) -> Optional[str]:
        return self.instance.subscribe_addr(mq.broker_name)  # the master, else any member

    @defer.inlineCallbacks
    def read(self, mq: MessageQueue, from_store: bool = False):
        if not from_store and mq in self.table:
            return self.table[mq]
        addr = self._addr(mq)
        if addr is None:
            yield self.instance.update_route(mq.topic)
            addr = self._addr(mq)
            if addr is None:
                return -1
        offset = yield self.instance.api.query_consumer_offset(addr, self.group, mq)
        if offset >= 0:
            self.table[mq] = offset
        return offset

    def persist(self, mqs: Iterable[MessageQueue]) -> defer.Deferred:
        calls = []
        for mq in mqs:
            offset = self.table.get(mq)
            addr = self._addr(mq)
            if offset is None or offset < 0 or addr is None:
                continue
            d = self.instance.api.update_consumer_offset(addr, self.group, mq, offset)
            d.addErrback(lambda f, mq=mq: log.info("committing the offset of {mq} failed: {e}", mq=mq,
                                                   e=f.getErrorMessage()))
            calls.append(d)
        return defer.DeferredList(calls)


ENTRY_PATTERN = re.compile(r'\{"brokerName":"((?:[^"\\]|\\.)*)","queueId":(\d+),"topic":"((?:[^"\\]|\\.)*)"\}:(-?\d+)')


def default_offset_dir() -> Path:
    """``$ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR`` or ``~/.rocketmq_offsets`` (the Java client's default)."""
    return Path(os.environ.get("ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR") or Path.home() / ".rocketmq_offsets")


class LocalFileOffsetStore(OffsetStore):
    """Offsets in ``<dir>/<clientId>/<group>/offsets.json``, fastjson's shape of Java's
    ``OffsetSerializeWrapper`` (message queues as object keys), written to a temporary file and renamed."""

    def __init__(self, client_id: str, group: str, directory: Optional[Path] = None) -> None:
        super().__init__()
        base = Path(directory) if directory is not None else default_offset_dir()
        self.path = base / client_id.replace(":", "_") / group / "offsets.json"
        self._loaded: Dict[MessageQueue, int] = {}
        self.load()

    def load(self) -> None:
        for path in (self.path, self.path.with_suffix(".json.bak")):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                continue
            self._loaded = {MessageQueue(t, b, int(q)): int(o) for b, q, t, o in ENTRY_PATTERN.findall(text)}
            return

    def read(self, mq: MessageQueue, from_store: bool = False) -> defer.Deferred:
        if not from_store and mq in self.table:
            return defer.succeed(self.table[mq])
        offset = self._loaded.get(mq, -1)
        if offset >= 0:
            self.table[mq] = offset
        return defer.succeed(offset)

    def persist(self, mqs: Iterable[MessageQueue]) -> defer.Deferred:
        table = dict(self._loaded)
        for mq in mqs:
            if self.table.get(mq, -1) >= 0:
                table[mq] = self.table[mq]
        if not table:
            return defer.succeed(None)
        items = ",".join(f'{{"brokerName":"{mq.broker_name}","queueId":{mq.queue_id},"topic":"{mq.topic}"}}:{off}'
                         for mq, off in sorted(table.items()))
        text = '{"offsetTable":{' + items + "}}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        if self.path.exists():
            os.replace(self.path, self.path.with_suffix(".json.bak"))
        os.replace(tmp, self.path)
        self._loaded = table
        return defer.succeed(None)
