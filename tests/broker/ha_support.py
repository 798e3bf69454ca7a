"""Helpers of the HA tests."""

from __future__ import annotations

from twisted.internet import defer, task

from mq.common.message import MessageExtBrokerInner
from mq.store.config import BrokerRole, MessageStoreConfig
from mq.store.store import MessageStore


def append_foreign(store_dir, n: int, tag: bytes = b"foreign") -> int:
    """Append ``n`` records to a stopped broker's store, as a master would: a tail its real master never had.

    Synchronous (a fake clock, fsync inline). Returns the store's new end offset.
    """
    cfg = MessageStoreConfig(store_path_root_dir=str(store_dir), mapped_file_size_commit_log=4 << 20,
                             mapped_file_size_consume_queue=20000, message_index_enable=False,
                             broker_role=BrokerRole.ASYNC_MASTER)
    store = MessageStore(cfg, task.Clock(), run_blocking=defer.maybeDeferred)
    store.start()
    for i in range(n):
        store.put_message(MessageExtBrokerInner(topic="HaForeign", body=b"%s-%d" % (tag, i), queue_id=0,
                                                properties={"TAGS": "x"}, born_host=("127.0.0.1", 1),
                                                born_timestamp=1))
    end = store.get_max_phy_offset()
    store.stop()
    return end
