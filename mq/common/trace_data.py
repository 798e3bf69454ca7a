"""Message trace records in RocketMQ's body encoding (Java ``TraceDataEncoder``), both directions.

A trace message's body is a run of records: fields joined by 0x01, each record ended by 0x02. The layouts
(Pub, SubBefore, SubAfter, EndTransaction) are in docs/trace.md. Encoding writes exactly what the 4.9.8 Java
client writes (``null`` for a missing value, ``true``/``false``), so Apache's tools and dashboard read traces
from mq's client; decoding reads the Java, Go and older layouts alike and skips a record it cannot read
instead of failing the whole body (Java's decoder throws on the first one).
"""

from __future__ import annotations

import enum
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import attrs

from mq.common.compression import inflate_prefix
from mq.common.message import MessageConst, MessageExt, MessageSysFlag

CONTENT_SPLITOR = "\x01"
FIELD_SPLITOR = "\x02"
#: Java's TraceConstants.TRACE_INSTANCE_NAME / group prefix of the dispatcher's own producer.
TRACE_PRODUCER_GROUP_PREFIX = "_INNER_TRACE_PRODUCER"
TRACE_INSTANCE_NAME = "PID_CLIENT_INNER_TRACE_PRODUCER"
#: Records read from the trace messages of one query together: a bound on what one message id can cost.
MAX_TRACE_RECORDS = 10_000
#: The most bytes a compressed trace message inflates to here (clients send at most 128,000 bytes of records; a
#: body inflating further is cut there, its last record unreadable and skipped).
MAX_TRACE_BODY = 4 * 1024 * 1024


class TraceType(str, enum.Enum):
    Pub = "Pub"
    SubBefore = "SubBefore"
    SubAfter = "SubAfter"
    EndTransaction = "EndTransaction"


class MessageType(enum.IntEnum):
    """Java ``MessageType``: written as its ordinal."""

    Normal_Msg = 0
    Trans_Msg_Half = 1
    Trans_msg_Commit = 2
    Delay_Msg = 3


class ConsumeReturnType(enum.IntEnum):
    """Java ``ConsumeReturnType``: SubAfter's contextCode is its ordinal."""

    SUCCESS = 0
    TIME_OUT = 1
    EXCEPTION = 2
    RETURNNULL = 3
    FAILED = 4


#: A batch send's ids (and offset ids) are one text, joined by this (Java ``SendResult.msgId`` of a batch).
BATCH_ID_SEPARATOR = ","

#: Transaction states as EndTransaction records name them (Java ``LocalTransactionState``).
TRANSACTION_STATES = ("COMMIT_MESSAGE", "ROLLBACK_MESSAGE", "UNKNOW")


@attrs.define
class TraceBean:
    """One traced message (Java ``TraceBean``). Text fields stay None when unknown; they print as ``null``."""

    msg_id: Optional[str] = None
    topic: Optional[str] = None
    tags: Optional[str] = None
    keys: Optional[str] = None
    store_host: Optional[str] = None
    client_host: Optional[str] = None
    offset_msg_id: Optional[str] = None
    body_length: int = 0
    retry_times: int = 0
    msg_type: MessageType = MessageType.Normal_Msg
    transaction_id: Optional[str] = None
    transaction_state: Optional[str] = None
    from_transaction_check: bool = False


@attrs.define
class TraceContext:
    """One Pub/EndTransaction record, or the SubBefore/SubAfter records of one consumed batch."""

    trace_type: TraceType
    timestamp: int = 0
    region_id: Optional[str] = None
    group_name: Optional[str] = None
    cost_time: int = 0
    success: bool = True
    request_id: Optional[str] = None
    context_code: int = 0
    beans: List[TraceBean] = attrs.field(factory=list)


def _s(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _record(*fields: Any) -> str:
    return CONTENT_SPLITOR.join(_s(f) for f in fields) + FIELD_SPLITOR


def pub_record(timestamp: int, region_id: Optional[str], group: Optional[str], topic: Optional[str],
               msg_id: Optional[str], tags: Optional[str], keys: Optional[str], store_host: Optional[str],
               body_length: int, cost_time: int, msg_type: int, offset_msg_id: Optional[str], success: bool) -> str:
    """One Pub record. Written out field by field: it is built once per traced send (a third of the
    generic ``_record``'s cost)."""
    n = "null"  # what Java prints for a missing value; inline, not a call per field
    return (f"Pub\x01{timestamp}\x01{n if region_id is None else region_id}\x01{n if group is None else group}"
            f"\x01{n if topic is None else topic}\x01{n if msg_id is None else msg_id}\x01{n if tags is None else tags}"
            f"\x01{n if keys is None else keys}\x01{n if store_host is None else store_host}\x01{body_length}"
            f"\x01{cost_time}\x01{msg_type}\x01{n if offset_msg_id is None else offset_msg_id}"
            f"\x01{'true' if success else 'false'}\x02")


def encode(ctx: TraceContext) -> str:
    """The records of one context, as the Java client writes them (SubAfter in its 9-field local layout)."""
    t = ctx.trace_type
    if t is TraceType.Pub:
        b = ctx.beans[0]
        return pub_record(ctx.timestamp, ctx.region_id, ctx.group_name, b.topic, b.msg_id, b.tags, b.keys,
                          b.store_host, b.body_length, ctx.cost_time, int(b.msg_type), b.offset_msg_id, ctx.success)
    if t is TraceType.SubBefore:
        return "".join(_record(t.value, ctx.timestamp, ctx.region_id, ctx.group_name, ctx.request_id, b.msg_id,
                               b.retry_times, b.keys) for b in ctx.beans)
    if t is TraceType.SubAfter:
        return "".join(_record(t.value, ctx.request_id, b.msg_id, ctx.cost_time, ctx.success, b.keys,
                               ctx.context_code, ctx.timestamp, ctx.group_name) for b in ctx.beans)
    b = ctx.beans[0]
    return _record(t.value, ctx.timestamp, ctx.region_id, ctx.group_name, b.topic, b.msg_id, b.tags, b.keys,
                   b.store_host, int(b.msg_type), b.transaction_id, b.transaction_state, b.from_transaction_check)


def add_keys(msg_id: Optional[str], keys: Optional[str], out: Dict[str, None]) -> None:
    """Add a traced message's id and each of its keys to ``out`` (an ordered set). A batch's Pub names all
    its messages' ids joined by commas (as Java's SendResult does): each is a key of its own, so every member
    of the batch finds the record (Java adds the joined string as one key, which no single id finds)."""
    if msg_id:
        if BATCH_ID_SEPARATOR in msg_id:
            for i in msg_id.split(BATCH_ID_SEPARATOR):
                if i:
                    out[i] = None
        else:
            out[msg_id] = None
    if keys:
        for k in keys.split(MessageConst.KEY_SEPARATOR):
            if k:
                out[k] = None


def index_keys(ctx: TraceContext, out: Dict[str, None]) -> None:
    """Add the keys a trace message carries for ``ctx`` to ``out`` (an ordered set): each message id and each
    message's keys, so the broker's index finds the trace by message id (Java's TraceTransferBean.transKey)."""
    for b in ctx.beans:
        add_keys(b.msg_id, b.keys, out)


# -- decoding ----------------------------------------------------------------------------------------------

#: Fewest fields each record type needs (Pub without offsetMsgId: 13; SubAfter before contextCode: 6).
_MIN_FIELDS = {"Pub": 13, "SubBefore": 8, "SubAfter": 6, "EndTransaction": 13}


def _bool(text: str) -> bool:
    return text.lower() == "true"  # Java's Boolean.parseBoolean


def _msg_type(text: str) -> MessageType:
    return MessageType(int(text))


def _decode_record(f: Sequence[str]) -> Optional[TraceContext]:
    kind = f[0]
    if kind == "Pub":
        ctx = TraceContext(TraceType.Pub, int(f[1]), f[2], f[3], cost_time=int(f[10]))
        bean = TraceBean(msg_id=f[5], topic=f[4], tags=f[6], keys=f[7], store_host=f[8], body_length=int(f[9]),
                         msg_type=_msg_type(f[11]))
        if len(f) == 13:
            ctx.success = _bool(f[12])
        else:
            bean.offset_msg_id, ctx.success = f[12], _bool(f[13])
            if len(f) >= 15:
                bean.client_host = f[14]  # the Go client's extra field
        ctx.beans.append(bean)
        return ctx
    if kind == "SubBefore":
        ctx = TraceContext(TraceType.SubBefore, int(f[1]), f[2], f[3], request_id=f[4])
        ctx.beans.append(TraceBean(msg_id=f[5], retry_times=int(f[6]), keys=f[7]))
        return ctx
    if kind == "SubAfter":
        ctx = TraceContext(TraceType.SubAfter, request_id=f[1], cost_time=int(f[3]), success=_bool(f[4]))
        ctx.beans.append(TraceBean(msg_id=f[2], keys=f[5]))
        if len(f) >= 7:
            ctx.context_code = int(f[6])
        if len(f) >= 8:
            ctx.timestamp = int(f[7])
        if len(f) >= 9:
            ctx.group_name = f[8]
        return ctx
    if kind == "EndTransaction":
        if f[11] not in TRANSACTION_STATES:
            return None
        ctx = TraceContext(TraceType.EndTransaction, int(f[1]), f[2], f[3])
        ctx.beans.append(TraceBean(msg_id=f[5], topic=f[4], tags=f[6], keys=f[7], store_host=f[8],
                                   msg_type=_msg_type(f[9]), transaction_id=f[10], transaction_state=f[11],
                                   from_transaction_check=_bool(f[12])))
        return ctx
    return None


def decode(text: str, limit: Optional[int] = None) -> Tuple[List[TraceContext], int]:
    """(the contexts of a trace body, one per record, at most ``limit``; how many records were skipped as
    unreadable).

    Fields are split as Java's ``String.split`` does (trailing empty fields dropped, so the cloud SubAfter's
    trailing 0x01 is no field); a record too short for its type, with a number that does not parse, or of an
    unknown type is skipped and counted.
    """
    out: List[TraceContext] = []
    bad = 0
    for chunk in text.split(FIELD_SPLITOR):
        if limit is not None and len(out) >= limit:
            break
        fields = chunk.split(CONTENT_SPLITOR)
        while fields and not fields[-1]:
            fields.pop()
        if not fields:
            continue
        need = _MIN_FIELDS.get(fields[0])
        if need is None or len(fields) < need:
            bad += 1
            continue
        try:
            ctx = _decode_record(fields)
        except ValueError:
            ctx = None
        if ctx is None:
            bad += 1
        else:
            out.append(ctx)
    return out, bad


# -- reading a message's trace (Java TraceView) --------------------------------------------------------------


@attrs.define
class TraceView:
    """One record about one message, as ``queryMsgTraceById`` and the dashboard show it. The fields after
    Java's (request id to transaction state) are what the console needs to join a consumption's SubBefore and
    SubAfter and to name a send's message type and a transaction's outcome; None where the record has none."""

    msg_type: str
    msg_id: str
    group_name: Optional[str]
    client_host: str
    timestamp: int
    cost_time: int
    status: str
    topic: Optional[str] = None
    tags: Optional[str] = None
    keys: Optional[str] = None
    store_host: Optional[str] = None
    offset_msg_id: Optional[str] = None
    request_id: Optional[str] = None
    retry_times: Optional[int] = None
    context_code: Optional[str] = None
    message_type: Optional[str] = None
    transaction_id: Optional[str] = None
    transaction_state: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {"msgType": self.msg_type, "msgId": self.msg_id, "groupName": self.group_name,
                "clientHost": self.client_host, "timeStamp": self.timestamp, "costTime": self.cost_time,
                "status": self.status, "topic": self.topic, "tags": self.tags, "keys": self.keys,
                "storeHost": self.store_host, "offSetMsgId": self.offset_msg_id, "requestId": self.request_id,
                "retryTimes": self.retry_times, "contextCode": self.context_code, "messageType": self.message_type,
                "transactionId": self.transaction_id, "transactionState": self.transaction_state}


def _context_code(code: int) -> str:
    """A SubAfter's context code by its ConsumeReturnType name (the number itself if it names none)."""
    try:
        return ConsumeReturnType(code).name
    except ValueError:
        return str(code)


def _member(bean: TraceBean, msg_id: str) -> Optional[Tuple[str, Optional[str]]]:
    """(id, offset id) of ``msg_id`` if the record is about it (None if not): the record's own, or for a
    batch's Pub (ids joined by commas) that member's id and, when the lists match, its offset id."""
    ids = bean.msg_id
    if ids == msg_id:
        return msg_id, bean.offset_msg_id
    if not ids or BATCH_ID_SEPARATOR not in ids:
        return None
    members = ids.split(BATCH_ID_SEPARATOR)
    if msg_id not in members:
        return None
    offsets = (bean.offset_msg_id or "").split(BATCH_ID_SEPARATOR)
    return msg_id, offsets[members.index(msg_id)] if len(offsets) == len(members) else bean.offset_msg_id


def _view(ctx: TraceContext, bean: TraceBean, client_host: str, msg_id: Optional[str] = None,
          offset_msg_id: Optional[str] = None) -> TraceView:
    t = ctx.trace_type
    view = TraceView(t.value, str(msg_id or bean.msg_id), ctx.group_name, client_host, ctx.timestamp,
                     ctx.cost_time, "success" if ctx.success else "failed", bean.topic, bean.tags, bean.keys,
                     bean.store_host, offset_msg_id if msg_id else bean.offset_msg_id)
    if t in (TraceType.SubBefore, TraceType.SubAfter):
        view.request_id = ctx.request_id
    if t is TraceType.SubBefore:
        view.retry_times = bean.retry_times
    elif t is TraceType.SubAfter:
        view.context_code = _context_code(ctx.context_code)
    else:
        view.message_type = bean.msg_type.name
    if t is TraceType.EndTransaction:
        view.transaction_id, view.transaction_state = bean.transaction_id, bean.transaction_state
    return view


def trace_body(msg: MessageExt) -> Optional[str]:
    """A trace message's text: its body inflated if the sender compressed it (Java's and mq's trace producers
    compress bodies of 4 KiB or more, so nearly every trace message) to at most ``MAX_TRACE_BODY`` bytes;
    None if it does not inflate."""
    body = msg.body
    if msg.sys_flag & MessageSysFlag.COMPRESSED_FLAG:
        try:
            body = inflate_prefix(body, MAX_TRACE_BODY)
        except zlib.error:
            return None
    return body.decode("utf-8", "replace")


def trace_views(msg_id: str, messages: Iterable[MessageExt], limit: int = MAX_TRACE_RECORDS) -> List[TraceView]:
    """The records about ``msg_id`` in these trace messages, reading at most ``limit`` records of them all;
    the client host is the trace message's born host (its IP), as Java's TraceView takes it."""
    views = []
    for m in messages:
        if limit <= 0:
            break
        text = trace_body(m)
        if text is None:
            continue
        contexts, _ = decode(text, limit)
        limit -= len(contexts)
        for ctx in contexts:
            found = _member(ctx.beans[0], msg_id)
            if found is not None:
                views.append(_view(ctx, ctx.beans[0], m.born_host[0], *found))
    return views
