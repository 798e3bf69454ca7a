"""The blocking facade: the producers and consumers for programs that do not run a reactor.

The reactor runs in one background daemon thread, started on first use; every call here hands its work to
that thread and waits for the result. Listeners of ``BlockingPushConsumer`` run in a pool of worker
threads, so they may block (database calls, HTTP requests). Each class is a context manager::

    with BlockingProducer("pg", "127.0.0.1:9876") as producer:
        result = producer.send(make_message("TopicA", b"hello", tags="TagA"))

Do not call these from the reactor thread itself (inside a Twisted program, use the Deferred API).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Set, Union

from twisted.internet import defer, threads
from twisted.python import threadable
from twisted.python.threadpool import ThreadPool

from mq.client.lite_pull import LitePullConsumer
from mq.client.model import MessageQueue, SendResult
from mq.client.producer import Producer
from mq.client.push_consumer import PushConsumer
from mq.client.transaction import TransactionProducer
from mq.common.message import Message, MessageExt

_lock = threading.Lock()
_thread: Optional[threading.Thread] = None


def reactor_thread():
    """The global reactor, running in a background thread (started here if it is not running)."""
    global _thread
    from twisted.internet import reactor

    with _lock:
        if not reactor.running and _thread is None:
            _thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                                       name="mq-reactor", daemon=True)
            _thread.start()
    if threading.current_thread() is _thread or (_thread is None and threadable.isInIOThread()):
        raise RuntimeError("the blocking facade cannot be used from the reactor thread")
    return reactor


def call(fn: Callable, *args, timeout: Optional[float] = None, **kwargs) -> Any:
    """Run ``fn(*args, **kwargs)`` in the reactor thread and wait for its result (Deferreds are waited for)."""
    reactor = reactor_thread()
    if timeout is None:
        return threads.blockingCallFromThread(reactor, fn, *args, **kwargs)
    done = threading.Event()
    box: List[Any] = []

    def run():
        d = defer.maybeDeferred(fn, *args, **kwargs)
        d.addBoth(lambda r: (box.append(r), done.set()))

    reactor.callFromThread(run)
    if not done.wait(timeout):
        raise TimeoutError(f"no result within {timeout} s")
    result = box[0]
    if isinstance(result, Exception) or hasattr(result, "raiseException"):
        result.raiseException()
    return result


class _Lifecycle:
    _client: Any

    def start(self) -> "_Lifecycle":
        call(self._client.start)
        return self

    def shutdown(self) -> None:
        call(self._client.shutdown)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()


class BlockingProducer(_Lifecycle):
    """``Producer`` with blocking calls; keyword arguments are ``Producer``'s."""

    _cls = Producer

    def __init__(self, group: str, namesrv_addr=None, **kwargs) -> None:
        reactor_thread()
        self._client = call(self._cls, group, namesrv_addr, **kwargs)

    def send(self, msg: Message, timeout: Optional[float] = None, **kwargs) -> SendResult:
        return call(self._client.send, msg, timeout, **kwargs)

    def send_oneway(self, msg: Message, **kwargs) -> None:
        call(self._client.send_oneway, msg, **kwargs)

    def request(self, msg: Message, timeout: Optional[float] = None, **kwargs) -> MessageExt:
        """Send a request and wait for its reply (``Producer.request``)."""
        return call(self._client.request, msg, timeout, **kwargs)

    def send_reply(self, reply: Message, timeout: Optional[float] = None, **kwargs) -> SendResult:
        return call(self._client.send_reply, reply, timeout, **kwargs)

    def send_batch(self, msgs: Iterable[Message], timeout: Optional[float] = None) -> SendResult:
        return call(self._client.send_batch, list(msgs), timeout)

    def cancel_timer(self, sent: SendResult, deliver_time_ms: int, timeout: Optional[float] = None) -> SendResult:
        """Cancel a timer message not yet delivered (``Producer.cancel_timer``)."""
        return call(self._client.cancel_timer, sent, deliver_time_ms, timeout)

    def send_async(self, msg: Message, on_success: Callable[[SendResult], Any],
                   on_exception: Optional[Callable[[Exception], Any]] = None, **kwargs) -> None:
        """Returns at once; the callbacks run later in the reactor thread (keep them short)."""
        from twisted.internet import reactor

        reactor.callFromThread(self._client.send_async, msg, on_success, on_exception, **kwargs)

    def fetch_publish_queues(self, topic: str) -> List[MessageQueue]:
        return call(self._client.fetch_publish_queues, topic)


class BlockingTransactionProducer(BlockingProducer):
    """``TransactionProducer`` with blocking calls. The local transaction and the check listener run in the
    reactor thread (keep them short, or use the Twisted API)."""

    _cls = TransactionProducer

    def send_message_in_transaction(self, msg: Message, arg: Any = None, timeout: Optional[float] = None):
        return call(self._client.send_message_in_transaction, msg, arg, timeout)


class BlockingPushConsumer(_Lifecycle):
    """``PushConsumer`` whose listeners run in worker threads (``consume_threads`` of them, default 20)."""

    def __init__(self, group: str, namesrv_addr=None, consume_threads: int = 20, **kwargs) -> None:
        reactor_thread()
        self._pool = ThreadPool(1, consume_threads, name=f"mq-consume-{group}")
        kwargs.setdefault("consume_concurrency", consume_threads)
        self._client = call(_ThreadedPushConsumer, self._pool, group, namesrv_addr, **kwargs)

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG") -> None:
        call(self._client.subscribe, topic, expression, expression_type)

    def register_message_listener(self, listener: Callable[[List[MessageExt], Any], Any]) -> None:
        call(self._client.register_message_listener, listener)

    def register_orderly_listener(self, listener: Callable[[List[MessageExt], Any], Any]) -> None:
        call(self._client.register_orderly_listener, listener)

    def start(self) -> "BlockingPushConsumer":
        self._pool.start()
        return super().start()

    def shutdown(self) -> None:
        try:
            super().shutdown()
        finally:
            self._pool.stop()


class _ThreadedPushConsumer(PushConsumer):
    def __init__(self, pool: ThreadPool, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pool

    def call_listener(self, msgs, context) -> defer.Deferred:
        return threads.deferToThreadPool(self.reactor, self._pool, self.listener, msgs, context)


class BlockingLitePullConsumer(_Lifecycle):
    """``LitePullConsumer`` with blocking calls: ``poll()`` waits up to ``timeout`` seconds."""

    def __init__(self, group: str, namesrv_addr=None, **kwargs) -> None:
        reactor_thread()
        self._client = call(LitePullConsumer, group, namesrv_addr, **kwargs)

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG", **kwargs) -> None:
        """``queue_listener=`` runs in the reactor thread (keep it short)."""
        call(self._client.subscribe, topic, expression, expression_type, **kwargs)

    def unsubscribe(self, topic: str) -> None:
        call(self._client.unsubscribe, topic)

    def assign(self, queues: Sequence[MessageQueue]) -> None:
        call(self._client.assign, list(queues))

    def set_sub_expression_for_assign(self, topic: str, expression: str) -> None:
        call(self._client.set_sub_expression_for_assign, topic, expression)

    def assignment(self) -> Set[MessageQueue]:
        return call(self._client.assignment)

    def register_topic_message_queue_change_listener(self, topic: str, listener: Callable) -> None:
        """The listener runs in the reactor thread (keep it short)."""
        call(self._client.register_topic_message_queue_change_listener, topic, listener)

    def update_name_server_address(self, namesrv_addr: str) -> None:
        call(self._client.update_name_server_address, namesrv_addr)

    @property
    def auto_commit(self) -> bool:
        return self._client.auto_commit

    @auto_commit.setter
    def auto_commit(self, value: bool) -> None:
        call(setattr, self._client, "auto_commit", value)

    def fetch_message_queues(self, topic: str) -> List[MessageQueue]:
        return call(self._client.fetch_message_queues, topic)

    def poll(self, timeout: Optional[float] = None) -> List[MessageExt]:
        return call(self._client.poll, timeout)

    def seek(self, mq: MessageQueue, offset: int) -> None:
        call(self._client.seek, mq, offset)

    def seek_to_begin(self, mq: MessageQueue) -> None:
        call(self._client.seek_to_begin, mq)

    def seek_to_end(self, mq: MessageQueue) -> None:
        call(self._client.seek_to_end, mq)

    def offset_for_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> int:
        return call(self._client.offset_for_timestamp, mq, timestamp_ms)

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        call(self._client.pause, list(queues))

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        call(self._client.resume, list(queues))

    def commit(self, queues: Union[None, Iterable[MessageQueue], Mapping[MessageQueue, int]] = None,
               persist: bool = True) -> None:
        if queues is not None and not isinstance(queues, Mapping):
            queues = list(queues)
        call(self._client.commit, queues, persist)

    def committed(self, mq: MessageQueue) -> int:
        return call(self._client.committed, mq)
