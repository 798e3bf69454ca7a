"""MessageStore: the facade the broker uses (RocketMQ's DefaultMessageStore).

Everything runs in the reactor thread except fsync (see flush.py). ``start()`` recovers synchronously before
anything is served; the put path appends one record, assigns the queue offset and dispatches it inline, so
reads see a message as soon as its put returns (like RocketMQ, before SYNC_FLUSH confirms it).
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from twisted.internet import defer, task, threads
from twisted.logger import Logger

from mq.common.message import MessageConst, MessageExtBrokerInner, MessageSysFlag, properties_to_string
from mq.common.message_batch import UniformBatch
from mq.common.message_record import MAX_PROPERTIES_LENGTH, RecordItem, encode_records
from mq.common.names import topic_error
from mq.common.progress import LOG_EVERY, LoggedProgress
from mq.common.topic import SCHEDULE_TOPIC
from mq.store.checkpoint import Checkpoint, load_checkpoint
from mq.store.commitlog import END_FILE_MIN_BLANK_LENGTH, CommitLog
from mq.store.config import BrokerRole, FlushDiskType, MessageStoreConfig, parse_delay_levels
from mq.store.consumequeue import ConsumeQueue, ConsumeQueueTable
from mq.store.diskspace import DiskSpace, disk_used_ratio
from mq.store.dispatch import Dispatcher, make_tags_code_fn
from mq.store.flush import FlushService
from mq.store.flushing import StoreFlushing
from mq.store.index import IndexService
from mq.store.mappedfile import DiskFullError, StoreError, fsync_dir
from mq.store.queue_flush import QueueFlushPlanner
from mq.store.reading import StoreReading
from mq.store.replicated import Replicator, StoreReplication
from mq.store.results import (
    AppendMessageResult,
    AppendMessageStatus,
    PutMessageResult,
    PutMessageStatus,
    StoreStats,
)
from mq.store.retention import Retention

log = Logger()
#: Seconds between two progress lines of a long recovery.
RECOVERY_LOG_EVERY = LOG_EVERY

_PREPARED = MessageSysFlag.TRANSACTION_PREPARED_TYPE
_ROLLBACK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_TRAN_MASK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_WAIT = MessageConst.PROPERTY_WAIT_STORE_MSG_OK
_KEYS = MessageConst.PROPERTY_KEYS
_KEY_SEPARATOR = MessageConst.KEY_SEPARATOR
_PROPS_TOO_LONG = PutMessageResult(PutMessageStatus.PROPERTIES_SIZE_EXCEEDED, reason="properties over 32767 bytes")
# Bound once: an Enum member read through its class costs a metaclass lookup on every put.
_PUT_OK = PutMessageStatus.PUT_OK
_APPEND_OK = AppendMessageStatus.PUT_OK
_SLAVE = BrokerRole.SLAVE


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30


class MessageStore(StoreReading, StoreFlushing, StoreReplication):
    def __init__(
        self,
        config: MessageStoreConfig,
        reactor: Any = None,
        store_host: Tuple[str, int] = ("127.0.0.1", 10911),
        now_ms: Optional[Callable[[], int]] = None,
        run_blocking: Optional[Callable[[Callable[[], Any]], defer.Deferred]] = None,
        disk_usage: Optional[Callable[[str], float]] = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.reactor = reactor
        self.store_host = store_host
        self.now_ms = now_ms or _wall_ms
        if run_blocking is None:
            if hasattr(reactor, "getThreadPool"):
                pool = reactor.getThreadPool()
                run_blocking = lambda fn: threads.deferToThreadPool(reactor, pool, fn)  # noqa: E731
            else:
                run_blocking = defer.maybeDeferred
        self.run_blocking = run_blocking
        root = config.store_path_root_dir
        self.abort_path = os.path.join(root, "abort")
        self.checkpoint_path = os.path.join(root, "checkpoint")
        self.lock_path = os.path.join(root, "lock")
        self.commitlog = CommitLog(
            config.commit_log_dir, config.mapped_file_size_commit_log, config.check_crc_on_read,
            config.commit_log_prefault_ahead,
        )  # fmt: skip
        self.queues = ConsumeQueueTable(config.consume_queue_dir, config.mapped_file_size_consume_queue)
        self.index: Optional[IndexService] = (
            IndexService(config.index_dir, config.max_hash_slot_num, config.max_index_num, self.now_ms)
            if config.message_index_enable
            else None
        )
        self.delay_levels = parse_delay_levels(config.message_delay_level)
        self.dispatcher = Dispatcher(self.queues, self.index, make_tags_code_fn(self.delay_levels))
        self.queue_offsets: Dict[Tuple[str, int], int] = {}
        self.dispatcher.queue_offsets = self.queue_offsets
        self.reput_offset = 0
        self.sync_flush = config.flush_disk_type == FlushDiskType.SYNC_FLUSH
        self.flusher = FlushService(
            reactor,
            run_blocking,
            self._prepare_commitlog_flush,
            self._prepare_logic_flush,
            lambda: self.commitlog.flushed,
            config.sync_flush_timeout,
        )
        self.retention = Retention(self)
        self.space = DiskSpace(
            root, disk_usage or disk_used_ratio, lambda: config.disk_space_warning_level_ratio,
            lambda: config.disk_space_check_interval, self.now_ms,
        )  # fmt: skip
        self.commitlog.on_new_file = self.space.stale  # a new file's worth of disk is used now
        self.checkpoint = Checkpoint()
        self.stats_counters = StoreStats()
        self.running = False
        self._checkpoint_failing = False
        self.queue_flush = QueueFlushPlanner(lambda: self.config.flush_consume_queue_least_pages,
                                             lambda: self.config.flush_consume_queue_thorough_interval)
        self._ticks = 0
        self._last_store_ts = 0
        self._lock_fd: Optional[int] = None
        self._loops: List[task.LoopingCall] = []
        self._memory_limit = _total_memory() * config.access_message_in_memory_max_ratio // 100
        #: DLedger mode (mq.broker.dledger): puts are encoded at the offsets the replicator predicts and handed
        #: to it instead of being written; committed entries come back through ``append_committed``.
        self.replicator: Optional[Replicator] = None

    # ------------------------------------------------------------------ hooks

    @property
    def message_arriving_listener(self) -> Optional[Callable[..., None]]:
        return self.dispatcher.listener

    @message_arriving_listener.setter
    def message_arriving_listener(self, listener: Optional[Callable[..., None]]) -> None:
        self.dispatcher.listener = listener

    @property
    def tags_code_fn(self) -> Callable[[str, Dict[str, str], int], int]:
        return self.dispatcher.tags_code_fn

    @tags_code_fn.setter
    def tags_code_fn(self, fn: Callable[[str, Dict[str, str], int], int]) -> None:
        self.dispatcher.tags_code_fn = fn

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Lock the directory, recover, and start the timers. Synchronous; call before serving."""
        root = self.config.store_path_root_dir
        os.makedirs(root, exist_ok=True)
        self._lock()
        abnormal = os.path.exists(self.abort_path)
        started = time.monotonic()
        self.checkpoint = load_checkpoint(self.checkpoint_path)
        self.commitlog.load()
        self.queues.load()
        if self.index is not None:
            self.index.load()
        self._recover(abnormal)
        with open(self.abort_path, "wb"):
            pass
        fsync_dir(root)
        log.info(
            "store {root} recovered ({how}) in {secs:.3f}s: CommitLog [{lo}, {hi})",
            root=root, how="after a crash" if abnormal else "clean", secs=time.monotonic() - started,
            lo=self.commitlog.min_offset, hi=self.commitlog.max_offset,
        )  # fmt: skip
        self.running = True
        cfg = self.config
        if not self.sync_flush:
            self._loop(self.flusher.request_commitlog, cfg.flush_interval_commit_log)
        self._loop(self._logic_tick, cfg.flush_interval_consume_queue)
        self._loop(self.retention.run, cfg.clean_resource_interval)

    def _loop(self, fn: Callable[[], Any], interval_ms: int) -> None:
        loop = task.LoopingCall(fn)
        loop.clock = self.reactor
        loop.start(interval_ms / 1000.0, now=False).addErrback(lambda f: log.failure("store timer failed", f))
        self._loops.append(loop)

    def _lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.lock_path} is locked: another store uses this directory")
        os.pwrite(fd, b"lock", 0)
        self._lock_fd = fd

    def stop(self) -> defer.Deferred:
        """Stop timers, flush everything, write the checkpoint, remove the abort file, close files."""
        if not self.running:
            return defer.succeed(None)
        self.running = False
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        d = self.flusher.drain()

        def finish(_: Any) -> None:
            self.flusher.stop()
            self.flusher.fail_all_waiters()
            self._close_files()
            os.unlink(self.abort_path)
            fsync_dir(self.config.store_path_root_dir)
            log.info("store stopped cleanly at CommitLog offset {offset}", offset=self.commitlog.max_offset)

        return d.addCallback(finish)

    def _close_files(self) -> None:
        self.commitlog.close()
        self.queues.close()
        if self.index is not None:
            self.index.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def crash_close(self) -> None:
        """Release files without flushing or checkpointing (tests: what a killed process leaves)."""
        self.running = False
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self.flusher.stop()
        self._close_files()

    # ------------------------------------------------------------------ recovery

    def _recover(self, abnormal: bool) -> None:
        cl = self.commitlog
        for cq in self.queues.all():
            cq.recover()
        files = cl.files.files
        lo = cl.min_offset
        hi = files[-1].end if files else 0
        start = self.checkpoint.recover_from
        if start is None or not lo <= start <= hi:
            if files:
                log.info("no usable checkpoint offsets: rebuilding queues and index from the whole CommitLog")
            start = lo
        cl.files.flushed = start
        progress = LoggedProgress("recovery: CommitLog read and dispatched", hi - start, every=RECOVERY_LOG_EVERY)
        end = self.dispatcher.reput(cl, start, None, self.config.check_crc_on_recover, start,
                                    lambda reached: progress.update(reached - start))
        progress.finish()
        last = cl.files.find(end)
        if last is not None and end < last.end and any(last.mm[end - last.start : min(last.end, end + 64) - last.start]):
            # Only a record cut short or invalid leaves bytes past the end of the last whole one (the rest of the
            # file is the zeros it was created with).
            log.warn("CommitLog truncated at {end}: dropping a torn or invalid record there", end=end)
        cl.truncate(end)
        self.queue_offsets.clear()
        for cq in self.queues.all():
            cq.truncate_dirty(end)
            cq.correct_min_offset(lo)
            if cq.max_offset:
                self.queue_offsets[(cq.topic, cq.queue_id)] = cq.max_offset
        if self.index is not None:
            self.index.truncate(end)
        self.reput_offset = end
        if files:
            self._last_store_ts = max(self.dispatcher.last_store_timestamp, self.checkpoint.physic_msg_timestamp)
        # Make what recovery read and rebuilt durable before anything new is acknowledged.
        for job in (self._prepare_commitlog_flush(), self._prepare_logic_flush(thorough=True)):
            if job is not None:
                job[0]()
                job[1]()

    # ------------------------------------------------------------------ writing

    def _refuse(self, topic: str, body_len: int, now_ms: Optional[int] = None) -> Optional[PutMessageResult]:
        if not self.running:
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="the store is not running")
        if self.config.broker_role == _SLAVE:
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="a slave does not accept puts")
        if self.replicator is not None:
            refused = self.replicator.refusal()
            if refused is not None:
                return refused
        full = self.space.refusal(now_ms)
        if full is not None:
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason=full)
        err = topic_error(topic)
        if err:
            return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason=err)
        if body_len > self.config.max_message_size:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL, reason=f"body of {body_len} bytes exceeds maxMessageSize"
            )
        return None

    def put_message(self, inner: MessageExtBrokerInner) -> defer.Deferred:
        """Append one message; Deferred[PutMessageResult] (see docs/store.md for when it fires)."""
        return _deferred(self.put_message_now(inner))

    def put_message_now(self, inner: MessageExtBrokerInner) -> Union[PutMessageResult, defer.Deferred]:
        """``put_message`` for the send path: the result itself when it is known on return (every refusal,
        ASYNC_FLUSH, ``WAIT=false``), a Deferred of it only when the put waits for a SYNC_FLUSH.

        The record is encoded once, copied into the CommitLog once and dispatched inline (``_append`` is the
        same for a batch; this is its one-message form, kept lean because it runs for every single send).
        """
        topic = inner.topic
        body = inner.body
        store_ts = self.now_ms()
        refused = self._refuse(topic, len(body), store_ts)
        if refused is not None:
            return self._failed(refused)
        text = inner.properties_string
        props = (properties_to_string(inner.properties) if text is None else text).encode("utf-8")
        if len(props) > MAX_PROPERTIES_LENGTH:
            return self._failed(_PROPS_TOO_LONG)
        queue_id = inner.queue_id
        sys_flag = inner.sys_flag
        tran = sys_flag & _TRAN_MASK
        visible = tran != _PREPARED and tran != _ROLLBACK
        key = (topic, queue_id)
        rep = self.replicator
        queue_offset = (self.queue_offsets if rep is None else rep.queue_offsets).get(key, 0) if visible else 0
        if store_ts < self._last_store_ts:
            store_ts = self._last_store_ts
        cl = self.commitlog
        phy = cl.files.wrote if rep is None else rep.end
        items = ((inner.flag, body, props, inner.body_crc or None),)
        args = (queue_id, queue_offset, phy, sys_flag, inner.born_timestamp, inner.born_host, store_ts,
                self.store_host, inner.reconsume_times, inner.prepared_transaction_offset, topic)  # fmt: skip
        data = encode_records(items, *args)[0]
        size = len(data)
        if size + END_FILE_MIN_BLANK_LENGTH > cl.file_size:
            return self._failed(PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason="record larger than a CommitLog file"))
        if rep is not None:
            # what the dispatch of this record needs, so the leader applies it without parsing it again
            local = (topic, queue_id, inner.tags_code, store_ts, queue_offset, sys_flag, inner.properties)
            return self._propose(rep, data, [size], lambda at: encode_records(items, *args[:2], at, *args[3:]),
                                 key, visible, queue_offset, store_ts, local)
        properties = inner.properties
        try:
            at = self._make_room(topic, queue_id, queue_offset, 1, tran, size, properties.get(_KEYS))
        except StoreError as e:
            return self._failed(self._no_room(e))
        if at != phy:  # the file was padded and rolled over: the record gets its offset in the next one
            phy = at
            data = encode_records(items, *args[:2], phy, *args[3:])[0]
        cl.write(phy, data)
        self._last_store_ts = store_ts
        if visible:
            self.queue_offsets[key] = queue_offset + 1
        tags_code = inner.tags_code
        dispatcher = self.dispatcher
        if tags_code is None:
            tags_code = dispatcher.tags_code_fn(topic, properties, store_ts)
        dispatcher.dispatch(topic, queue_id, phy, size, tags_code, store_ts, queue_offset, sys_flag, properties)
        self.reput_offset = phy + size
        counters = self.stats_counters
        counters.put_message_times_total += 1
        counters.put_message_size_total += size
        result = AppendMessageResult(_APPEND_OK, phy, size, store_ts, queue_offset, 1, self.store_host)
        return self._complete(result, properties.get(_WAIT))

    def put_messages(self, inners: Sequence[MessageExtBrokerInner]) -> defer.Deferred:
        """Append a batch (one topic and queue): consecutive queue offsets, all in one CommitLog file."""
        if not inners:
            return _deferred(self._failed(PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason="empty batch")))
        first = inners[0]
        messages = []
        for inner in inners:
            if inner.topic != first.topic or inner.queue_id != first.queue_id:
                refused = self._refuse(inner.topic, len(inner.body))
                if refused is not None:
                    return _deferred(self._failed(refused))
                reason = "a batch must have one topic and queue"
                return _deferred(self._failed(PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason=reason)))
            text = inner.properties_string
            messages.append((inner.flag, inner.body, properties_to_string(inner.properties) if text is None else text,
                             inner.properties))  # fmt: skip
        return self.put_message_batch(
            first.topic, first.queue_id, first.sys_flag, first.born_timestamp, first.born_host, first.reconsume_times,
            messages, first.properties.get(_WAIT), first.prepared_transaction_offset, [i.tags_code for i in inners],
        )  # fmt: skip

    def put_message_batch(self, *args: Any, **kwargs: Any) -> defer.Deferred:
        """``put_messages`` without a message object per member (the broker's batch path): the arguments of
        ``put_message_batch_now``, a Deferred[PutMessageResult]."""
        return _deferred(self.put_message_batch_now(*args, **kwargs))

    def put_message_batch_now(
        self,
        topic: str,
        queue_id: int,
        sys_flag: int,
        born_timestamp: int,
        born_host: Tuple[str, int],
        reconsume_times: int,
        messages: Sequence[Tuple[int, bytes, str, Dict[str, str]]],
        wait: Optional[str] = None,
        prepared_transaction_offset: int = 0,
        tags_codes: Optional[Sequence[Optional[int]]] = None,
    ) -> Union[PutMessageResult, defer.Deferred]:
        """A batch put, its result returned as ``put_message_now`` returns it.

        ``messages`` are (flag, body, properties string to store, properties dict); the members share everything
        else. ``wait`` is the batch's ``WAIT`` property. The records are encoded once, copied into the CommitLog
        in one piece and dispatched in one pass. The PutMessageResult has ``msg_num`` messages.
        """
        if not messages:
            return self._failed(PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason="empty batch"))
        return self._put_batch(topic, queue_id, sys_flag, born_timestamp, born_host, reconsume_times, messages, None,
                               max(len(m[1]) for m in messages), wait, prepared_transaction_offset, tags_codes)

    def put_uniform_batch_now(self, topic: str, queue_id: int, sys_flag: int, born_timestamp: int,
                              born_host: Tuple[str, int], reconsume_times: int, batch: UniformBatch,
                              wait: Optional[str] = None) -> Union[PutMessageResult, defer.Deferred]:
        """``put_message_batch_now`` for members that share their properties but for a UNIQ_KEY each (the
        broker's one-pass batch path, mq.broker.processor.batch_shape): stores and answers exactly what the
        general form would, without a properties dict per member."""
        return self._put_batch(topic, queue_id, sys_flag, born_timestamp, born_host, reconsume_times, batch.records,
                               batch.uniq_keys, batch.largest_body, wait, 0, None, batch.properties)

    def _put_batch(
        self, topic: str, queue_id: int, sys_flag: int, born_timestamp: int, born_host: Tuple[str, int],
        reconsume_times: int, messages: Sequence[Any], uniq_keys: Optional[List[str]], largest_body: int,
        wait: Optional[str], prepared_transaction_offset: int, tags_codes: Optional[Sequence[Optional[int]]],
        shared: Optional[Dict[str, str]] = None,
    ) -> Union[PutMessageResult, defer.Deferred]:
        """Both batch forms: ``messages`` with ``uniq_keys`` None are the general form's members, else the
        uniform form's records (``shared`` their properties)."""
        store_ts = self.now_ms()
        refused = self._refuse(topic, largest_body, store_ts)
        if refused is not None:
            return self._failed(refused)
        if uniq_keys is None:
            items: List[RecordItem] = []
            for flag, body, text, _ in messages:
                props = text.encode("utf-8")
                if len(props) > MAX_PROPERTIES_LENGTH:
                    return self._failed(_PROPS_TOO_LONG)
                items.append((flag, body, props, None))
        else:
            items = messages  # type: ignore[assignment]
        tran = sys_flag & _TRAN_MASK
        key = (topic, queue_id)
        rep = self.replicator
        if tran == _PREPARED or tran == _ROLLBACK:
            queue_offset, step = 0, 0
        else:
            queue_offset, step = (self.queue_offsets if rep is None else rep.queue_offsets).get(key, 0), 1
        if store_ts < self._last_store_ts:
            store_ts = self._last_store_ts
        cl = self.commitlog
        phy = cl.files.wrote if rep is None else rep.end
        args = (queue_id, queue_offset, phy, sys_flag, born_timestamp, born_host, store_ts, self.store_host,
                reconsume_times, prepared_transaction_offset, topic, step)  # fmt: skip
        data, sizes = encode_records(items, *args)
        size = len(data)
        if size + END_FILE_MIN_BLANK_LENGTH > cl.file_size:
            return self._failed(PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, reason="batch larger than a CommitLog file"))
        if rep is not None:
            return self._propose(rep, data, sizes, lambda at: encode_records(items, *args[:2], at, *args[3:]),
                                 key, step, queue_offset, store_ts)
        if uniq_keys is None:
            keys = " ".join([m[3][_KEYS] for m in messages if _KEYS in m[3]]) or None
        else:
            keys = None
        try:  # the whole batch lands in one file
            at = self._make_room(topic, queue_id, queue_offset, len(sizes), tran, size, keys, len(messages))
        except StoreError as e:
            return self._failed(self._no_room(e))
        if at != phy:  # the file was padded and rolled over: the records get their offsets in the next one
            phy = at
            data, sizes = encode_records(items, *args[:2], phy, *args[3:])
        cl.write(phy, data)
        self._last_store_ts = store_ts
        n = len(sizes)
        if step:
            self.queue_offsets[key] = queue_offset + n
        dispatcher = self.dispatcher
        if uniq_keys is None:
            properties = [m[3] for m in messages]
            if tags_codes is None or None in tags_codes:
                fn = dispatcher.tags_code_fn
                tags_codes = [fn(topic, p, store_ts) if c is None else c
                              for p, c in zip(properties, tags_codes or (None,) * n)]  # fmt: skip
        else:
            properties = shared  # type: ignore[assignment]
            tags_codes = [dispatcher.tags_code_fn(topic, shared, store_ts)] * n
        dispatcher.dispatch_batch(topic, queue_id, phy, sizes, tags_codes, store_ts, queue_offset, sys_flag, properties,
                                  uniq_keys)  # fmt: skip
        self.reput_offset = phy + size
        counters = self.stats_counters
        counters.put_message_times_total += n
        counters.put_message_size_total += size
        offsets = []
        for rec_size in sizes:
            offsets.append(phy)
            phy += rec_size
        result = AppendMessageResult(
            AppendMessageStatus.PUT_OK, offsets[0], size, store_ts, queue_offset, n, self.store_host, tuple(offsets)
        )
        return self._complete(result, wait)

    def _make_room(
        self, topic: str, queue_id: int, queue_offset: int, count: int, tran: int, size: int, keys: Optional[str],
        messages: int = 1,
    ) -> int:
        """Create and reserve every file the put will write into, before it writes anything: the queue's
        ConsumeQueue file(s), room in the IndexFile, then the CommitLog position (``position_for``). A full
        disk raises DiskFullError here and the CommitLog is left as it was, so no refused message can be
        found there by a later recovery."""
        if tran != _PREPARED and tran != _ROLLBACK:
            self.queues.find_or_create(topic, queue_id).prepare(queue_offset, count)
        if self.index is not None and tran != _ROLLBACK:
            self.index.prepare(messages if keys is None else messages + 1 + keys.count(_KEY_SEPARATOR))
        return self.commitlog.position_for(size)

    def _no_room(self, e: StoreError) -> PutMessageResult:
        """The refusal of a put whose files could not be created or reserved."""
        problem = str(e).replace(self.config.store_path_root_dir.rstrip(os.sep) + os.sep, "")  # no host paths to clients
        if isinstance(e, DiskFullError):
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason=self.space.no_space(problem))
        log.error("put refused: {e}", e=e)
        return PutMessageResult(PutMessageStatus.CREATE_MAPEDFILE_FAILED, reason=problem)

    def _failed(self, result: PutMessageResult) -> PutMessageResult:
        self.stats_counters.put_message_failures += 1
        return result

    def _complete(self, result: AppendMessageResult, wait: Optional[str]) -> Union[PutMessageResult, defer.Deferred]:
        if self.sync_flush and (wait is None or wait.lower() != "false"):
            end = result.wrote_offset + result.wrote_bytes
            return self.flusher.wait_for(end).addCallback(_flush_outcome, result)
        return PutMessageResult(_PUT_OK, result)

    # ------------------------------------------------------------------ admin and stats

    def delete_topics(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.queues.delete_topic(topic)
            for key in [k for k in self.queue_offsets if k[0] == topic]:
                del self.queue_offsets[key]

    def clean_expired_consume_queues(self) -> List[Tuple[str, int]]:
        """Remove the queues (but the schedule topic's) whose every entry points before the CommitLog's first
        message, as RocketMQ's cleanExpiredConsumerQueue: nothing they index can be read any more. The queue
        offsets go on from where they were when such a queue gets a message again. The queues removed."""
        min_phy = self.commitlog.min_offset
        expired = [(cq.topic, cq.queue_id) for cq in self.queues.all()
                   if cq.topic != SCHEDULE_TOPIC and 0 <= cq.max_phy_end <= min_phy and cq.max_offset > 0]
        for topic, queue_id in expired:
            self.queues.delete_queue(topic, queue_id)
            log.info("cleanExpiredConsumerQueue: {topic}/{qid} removed, all its entries are before CommitLog "
                     "offset {min_phy}", topic=topic, qid=queue_id, min_phy=min_phy)
        return expired

    def topics_with_queues(self) -> List[str]:
        return sorted(self.queues.queues)

    def stats(self) -> StoreStats:
        s = self.stats_counters
        s.corrupt_records_detected = self.commitlog.corrupt_records
        s.commit_log_min_offset = self.commitlog.min_offset
        s.commit_log_max_offset = self.commitlog.max_offset
        s.dispatch_behind_bytes = self.commitlog.max_offset - self.reput_offset
        s.flushed_offset = self.commitlog.flushed
        s.disk_used_ratio = self.space.ratio
        return s

    def consume_queue(self, topic: str, queue_id: int) -> Optional[ConsumeQueue]:
        return self.queues.find(topic, queue_id)


def _deferred(result: Union[PutMessageResult, defer.Deferred]) -> defer.Deferred:
    return result if isinstance(result, defer.Deferred) else defer.succeed(result)


def _flush_outcome(flushed: bool, result: AppendMessageResult) -> PutMessageResult:
    if flushed:
        return PutMessageResult(PutMessageStatus.PUT_OK, result)
    return PutMessageResult(PutMessageStatus.FLUSH_DISK_TIMEOUT, result, reason="not flushed within syncFlushTimeout")
