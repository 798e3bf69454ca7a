"""Queue selectors for ``Producer.send(..., selector=..., arg=...)``: ordered messages go to one queue per key.

A selector is any callable ``(queues, message, arg) -> MessageQueue``. ``select_by_hash`` hashes the
argument as Java's ``SelectMessageQueueByHash`` does (``String.hashCode`` for strings), so a key lands on the
same queue number as with the Java client.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from mq.client.model import MessageQueue
from mq.common.hashing import java_string_hash
from mq.common.message import Message

Selector = Callable[[Sequence[MessageQueue], Message, Any], MessageQueue]


def java_hash(arg: Any) -> int:
    """Java ``hashCode()`` of a string or an int (other objects: Python's hash)."""
    if isinstance(arg, str):
        return java_string_hash(arg)
    if isinstance(arg, int):
        if -(1 << 31) <= arg < (1 << 31):
            return arg  # Integer.hashCode
        v = arg & 0xFFFFFFFFFFFFFFFF
        h = (v ^ (v >> 32)) & 0xFFFFFFFF  # Long.hashCode
        return h - (1 << 32) if h & 0x80000000 else h
    return hash(arg)


def select_by_hash(queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue:
    """``queues[abs(hash(arg)) % len(queues)]``: every message with the same key goes to the same queue."""
    return queues[abs(java_hash(arg)) % len(queues)]


def select_by_random(queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue:
    return random.choice(list(queues))
