"""A store writer for crash tests: appends until killed, printing one line per completed put.

Run as ``python -m tests.store.crash_writer ROOT FLUSH_TYPE``. Each line is
``phy size sha1(record) topic queue_id queue_offset uniq_key``, printed only after the put completed
(under SYNC_FLUSH: after its bytes were fsynced).
"""

from __future__ import annotations

import hashlib
import itertools
import sys

from twisted.internet import reactor

from mq.common.message import MessageExtBrokerInner
from mq.store import FlushDiskType, MessageStore, MessageStoreConfig, PutMessageStatus

IN_FLIGHT = 16


def main(root: str, flush_type: str) -> None:
    config = MessageStoreConfig(
        store_path_root_dir=root,
        flush_disk_type=FlushDiskType(flush_type),
        mapped_file_size_commit_log=64 * 1024,
        mapped_file_size_consume_queue=64 * 20,
        max_hash_slot_num=64,
        max_index_num=512,
    )
    store = MessageStore(config, reactor=reactor, store_host=("10.0.0.5", 10911))
    store.start()
    counter = itertools.count()
    out = sys.stdout

    def one() -> None:
        i = next(counter)
        msg = MessageExtBrokerInner(
            topic=f"T{i % 3}",
            body=bytes([i % 251]) * (1 + (i * 37) % 900),
            queue_id=i % 4,
            properties={"UNIQ_KEY": f"U{i}", "KEYS": f"K{i}", "TAGS": f"tag{i % 5}"},
            born_host=("192.168.0.7", 40000 + i % 1000),
            born_timestamp=1_700_000_000_000 + i,
        )
        store.put_message(msg).addCallback(done, msg)

    def done(result, msg) -> None:
        if result.status is PutMessageStatus.PUT_OK:
            ar = result.append_result
            raw = store.look_message_by_offset(ar.wrote_offset)
            out.write(
                f"{ar.wrote_offset} {ar.wrote_bytes} {hashlib.sha1(raw).hexdigest()} {msg.topic} {msg.queue_id}"
                f" {ar.logics_offset} {msg.properties['UNIQ_KEY']}\n"
            )
            out.flush()
        reactor.callLater(0, one)

    def begin() -> None:
        out.write("READY\n")
        out.flush()
        for _ in range(IN_FLIGHT):
            one()

    reactor.callWhenRunning(begin)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
