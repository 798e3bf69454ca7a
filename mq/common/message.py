"""The message model (wire doc §4): ``Message``, ``MessageExt`` and ``MessageExtBrokerInner``, the property keys
and flag bits, the properties codec and offset msgIds; shared by clients, broker, store and replication.

The stored-message record these are read from and written as is ``mq.common.message_record``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import attrs

from mq.common.hotcache import hot_cache

Host = Tuple[str, int]

NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"


class MessageConst:
    """Well-known property keys (Java ``MessageConst``)."""

    PROPERTY_KEYS = "KEYS"
    PROPERTY_TAGS = "TAGS"
    PROPERTY_WAIT_STORE_MSG_OK = "WAIT"
    PROPERTY_DELAY_TIME_LEVEL = "DELAY"
    PROPERTY_RETRY_TOPIC = "RETRY_TOPIC"
    PROPERTY_REAL_TOPIC = "REAL_TOPIC"
    PROPERTY_REAL_QUEUE_ID = "REAL_QID"
    PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"
    PROPERTY_PRODUCER_GROUP = "PGROUP"
    PROPERTY_MIN_OFFSET = "MIN_OFFSET"
    PROPERTY_MAX_OFFSET = "MAX_OFFSET"
    PROPERTY_BUYER_ID = "BUYER_ID"
    PROPERTY_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
    PROPERTY_TRANSFER_FLAG = "TRANSFER_FLAG"
    PROPERTY_CORRECTION_FLAG = "CORRECTION_FLAG"
    PROPERTY_MQ2_FLAG = "MQ2_FLAG"
    PROPERTY_RECONSUME_TIME = "RECONSUME_TIME"
    PROPERTY_MSG_REGION = "MSG_REGION"
    PROPERTY_TRACE_SWITCH = "TRACE_ON"
    PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX = "UNIQ_KEY"
    PROPERTY_MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
    PROPERTY_CONSUME_START_TIMESTAMP = "CONSUME_START_TIME"
    PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET = "TRAN_PREPARED_QUEUE_OFFSET"
    PROPERTY_TRANSACTION_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
    PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS = "CHECK_IMMUNITY_TIME_IN_SECONDS"
    PROPERTY_INSTANCE_ID = "INSTANCE_ID"
    PROPERTY_CORRELATION_ID = "CORRELATION_ID"
    PROPERTY_MESSAGE_REPLY_TO_CLIENT = "REPLY_TO_CLIENT"
    PROPERTY_MESSAGE_TTL = "TTL"
    PROPERTY_REPLY_MESSAGE_ARRIVE_TIME = "ARRIVE_TIME"
    PROPERTY_PUSH_REPLY_TIME = "PUSH_REPLY_TIME"
    PROPERTY_CLUSTER = "CLUSTER"
    PROPERTY_MESSAGE_TYPE = "MSG_TYPE"
    PROPERTY_INNER_MULTI_DISPATCH = "INNER_MULTI_DISPATCH"
    PROPERTY_INNER_MULTI_QUEUE_OFFSET = "INNER_MULTI_QUEUE_OFFSET"
    # RocketMQ 5.x timer messages (docs/timer.md): asked for by the producer...
    PROPERTY_TIMER_DELIVER_MS = "TIMER_DELIVER_MS"
    PROPERTY_TIMER_DELAY_SEC = "TIMER_DELAY_SEC"
    PROPERTY_TIMER_DELAY_MS = "TIMER_DELAY_MS"
    #: Cancels the pending timer message ``<topic>+<UNIQ_KEY>`` (5.3; 5.0-5.2: the bare UNIQ_KEY) due in the
    #: same precision window as this message's own time.
    PROPERTY_TIMER_DEL_UNIQKEY = "TIMER_DEL_UNIQKEY"
    # ...and written by the broker.
    PROPERTY_TIMER_OUT_MS = "TIMER_OUT_MS"
    PROPERTY_TIMER_ENQUEUE_MS = "TIMER_ENQUEUE_MS"
    PROPERTY_TIMER_DEQUEUE_MS = "TIMER_DEQUEUE_MS"
    KEY_SEPARATOR = " "


class MessageSysFlag:
    """Bits of the record's SYSFLAG (wire doc §4.2)."""

    COMPRESSED_FLAG = 0x1
    MULTI_TAGS_FLAG = 0x2
    TRANSACTION_NOT_TYPE = 0x0
    TRANSACTION_PREPARED_TYPE = 0x4
    TRANSACTION_COMMIT_TYPE = 0x8
    TRANSACTION_ROLLBACK_TYPE = 0xC
    BORNHOST_V6_FLAG = 0x10
    STOREHOSTADDRESS_V6_FLAG = 0x20
    NEED_UNWRAP_FLAG = 0x40
    INNER_BATCH_FLAG = 0x80
    COMPRESSION_LZ4_TYPE = 0x100
    COMPRESSION_ZSTD_TYPE = 0x200
    COMPRESSION_ZLIB_TYPE = 0x300
    COMPRESSION_TYPE_MASK = 0x700

    @staticmethod
    def get_transaction_value(flag: int) -> int:
        return flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE

    @staticmethod
    def reset_transaction_value(flag: int, type_: int) -> int:
        return (flag & ~MessageSysFlag.TRANSACTION_ROLLBACK_TYPE) | type_


class PullSysFlag:
    """Bits of the PULL_MESSAGE request header's ``sysFlag`` (wire doc §4.3)."""

    FLAG_COMMIT_OFFSET = 0x1
    FLAG_SUSPEND = 0x2
    FLAG_SUBSCRIPTION = 0x4
    FLAG_CLASS_FILTER = 0x8
    FLAG_LITE_PULL_MESSAGE = 0x10

    @staticmethod
    def build(commit_offset: bool, suspend: bool, subscription: bool, class_filter: bool, lite_pull: bool = False) -> int:
        return (
            (PullSysFlag.FLAG_COMMIT_OFFSET if commit_offset else 0)
            | (PullSysFlag.FLAG_SUSPEND if suspend else 0)
            | (PullSysFlag.FLAG_SUBSCRIPTION if subscription else 0)
            | (PullSysFlag.FLAG_CLASS_FILTER if class_filter else 0)
            | (PullSysFlag.FLAG_LITE_PULL_MESSAGE if lite_pull else 0)
        )

    @staticmethod
    def clear_commit_offset_flag(flag: int) -> int:
        return flag & ~PullSysFlag.FLAG_COMMIT_OFFSET


# --------------------------------------------------------------------------------------------- properties


def properties_to_string(properties: Mapping[str, str]) -> str:
    """Encode properties as Java 4.9.3+ does: ``k\\x01v`` items joined by ``\\x02``, no trailing separator."""
    return PROPERTY_SEPARATOR.join(f"{k}{NAME_VALUE_SEPARATOR}{v}" for k, v in properties.items())


def string_to_properties(text: str) -> Dict[str, str]:
    """Decode a properties string; accepts a trailing ``\\x02`` and skips empty or malformed items."""
    result: Dict[str, str] = {}
    if not text:
        return result
    for item in text.split(PROPERTY_SEPARATOR):
        key, sep, value = item.partition(NAME_VALUE_SEPARATOR)
        if sep and key and value:
            result[key] = value
    return result


# --------------------------------------------------------------------------------------------- hosts and ids


@hot_cache(4096)
def host_ip(host: str) -> Tuple[bool, bytes]:
    """(is IPv6, packed address) of a literal IP; cached because a broker sees few distinct peers."""
    try:
        return False, socket.inet_aton(host) if host.count(".") == 3 else socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return True, socket.inet_pton(socket.AF_INET6, host)


def _ip_text(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)


def is_v6_host(host: str) -> bool:
    return host_ip(host)[0]


def normalize_host(host: str) -> str:
    """Map an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) to plain IPv4; the C++ and Node decoders need it."""
    if host.startswith("::ffff:") and host.count(".") == 3:
        return host[7:]
    return host


def host_bytes(host: Host) -> bytes:
    """The 8 (IPv4) or 20 (IPv6) bytes of a host field: address then i32 port."""
    return host_ip(host[0])[1] + struct.pack(">i", host[1])


def create_offset_msg_id(store_host: Host, commit_log_offset: int) -> str:
    """The offset msgId: uppercase hex of store ip + port + physical offset (32 chars for IPv4)."""
    return (host_bytes(store_host) + struct.pack(">q", commit_log_offset)).hex().upper()


def decode_offset_msg_id(msg_id: str) -> Tuple[Host, int]:
    """((ip, port), physical offset) from an offset msgId; raises ValueError if it is not one."""
    raw = bytes.fromhex(msg_id)
    if len(raw) not in (16, 28):
        raise ValueError(f"not an offset message id: {msg_id!r}")
    ip_len = len(raw) - 12
    port, offset = struct.unpack_from(">iq", raw, ip_len)
    return (_ip_text(raw[:ip_len]), port), offset


# --------------------------------------------------------------------------------------------- model


def _string_property(key: str, doc: str) -> Any:
    """A property of the properties dict: reads give None when absent, setting None or "" removes it."""

    def get(self: "Message") -> Optional[str]:
        return self.properties.get(key)

    def set_(self: "Message", value: Optional[str]) -> None:
        self._set_or_clear(key, value)

    return property(get, set_, doc=doc)


def _int_property(key: str, doc: str) -> Any:
    """An integer property: reads give None when absent or not a number, setting None removes it."""

    def get(self: "Message") -> Optional[int]:
        raw = self.properties.get(key)
        try:
            return int(raw) if raw else None
        except ValueError:
            return None

    def set_(self: "Message", value: Optional[int]) -> None:
        self._set_or_clear(key, None if value is None else str(int(value)))

    return property(get, set_, doc=doc)


@attrs.define(eq=True)
class Message:
    """A message as a producer sends it: topic, body, user flag and properties."""

    topic: str = ""
    body: bytes = b""
    flag: int = 0
    properties: Dict[str, str] = attrs.field(factory=dict)

    def get_property(self, key: str, default: Optional[str] = None) -> Optional[str]:
        return self.properties.get(key, default)

    def put_property(self, key: str, value: str) -> None:
        self.properties[key] = value

    def clear_property(self, key: str) -> None:
        self.properties.pop(key, None)

    tags = _string_property(MessageConst.PROPERTY_TAGS, "The TAGS property (None when absent).")
    unique_key = _string_property(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "UNIQ_KEY, the client message id.")

    @property
    def keys(self) -> List[str]:
        """The user keys (``KEYS`` split on spaces, empty tokens dropped)."""
        raw = self.properties.get(MessageConst.PROPERTY_KEYS)
        return [k for k in raw.split(MessageConst.KEY_SEPARATOR) if k] if raw else []

    @keys.setter
    def keys(self, value: Union[str, Sequence[str], None]) -> None:
        if value is not None and not isinstance(value, str):
            value = MessageConst.KEY_SEPARATOR.join(value)
        self._set_or_clear(MessageConst.PROPERTY_KEYS, value)

    @property
    def delay_time_level(self) -> int:
        raw = self.properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL)
        try:
            return int(raw) if raw else 0
        except ValueError:
            return 0

    @delay_time_level.setter
    def delay_time_level(self, level: int) -> None:
        self._set_or_clear(MessageConst.PROPERTY_DELAY_TIME_LEVEL, str(level) if level else None)

    deliver_time_ms = _int_property(
        MessageConst.PROPERTY_TIMER_DELIVER_MS,
        "``TIMER_DELIVER_MS``: when a RocketMQ 5.x or mq broker delivers the message (epoch ms; Java's "
        "``setDeliverTimeMs``); None clears it. A 4.x broker ignores it and delivers at once.")
    delay_time_ms = _int_property(
        MessageConst.PROPERTY_TIMER_DELAY_MS, "``TIMER_DELAY_MS``: deliver this many ms after the broker stores it.")
    delay_time_sec = _int_property(
        MessageConst.PROPERTY_TIMER_DELAY_SEC, "``TIMER_DELAY_SEC``: deliver this many s after the broker stores it.")

    @property
    def wait_store_msg_ok(self) -> bool:
        """``WAIT`` (default true); only the literal ``false`` (any case) turns it off, like Java."""
        raw = self.properties.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK)
        return raw is None or raw.lower() != "false"

    def _set_or_clear(self, key: str, value: Optional[str]) -> None:
        if value:
            self.properties[key] = value
        else:
            self.properties.pop(key, None)


@attrs.define(eq=True)
class MessageExt(Message):
    """A stored message with every field of its CommitLog record."""

    queue_id: int = 0
    store_size: int = 0
    queue_offset: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: Host = ("127.0.0.1", 0)
    store_timestamp: int = 0
    store_host: Host = ("127.0.0.1", 0)
    msg_id: str = ""
    commit_log_offset: int = 0
    body_crc: int = 0
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0


@attrs.define(eq=False)
class MessageExtBrokerInner(MessageExt):
    """What the broker hands to the store: a MessageExt plus what it already knows.

    ``properties_string`` is the encoded properties as received (so the store need not re-encode them) and
    ``tags_code`` the ConsumeQueue tag code if the broker computed it; both are filled in when left None.
    """

    properties_string: Optional[str] = None
    tags_code: Optional[int] = None
