"""Message traces: the records RocketMQ clients with tracing on write to ``RMQ_SYS_TRACE_TOPIC``, read back.

A trace message's body is records ended by 0x02, each record's fields split by 0x01 (the Java client's
``TraceDataEncoder``); its keys are the traced messages' ids, so the broker's key index finds every trace
message of one id. The field lists below are the 4.9.8 client's, with the lengths its decoder accepts: a
``Pub`` of 13 fields (before offsetMsgId), 14, or 15 (the Go client adds the client host); a ``SubAfter`` of 6,
7 (context code) or 9 (timestamp and group); a CLOUD ``SubAfter`` that ends without 0x02.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

CONTENT_SPLITOR = "\x01"
FIELD_SPLITOR = "\x02"
TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
UNKNOWN_GROUP = "%UNKNOWN_GROUP%"
#: Records read from all trace messages of one query together: a bound on what one id can cost.
MAX_RECORDS = 10_000
MESSAGE_TYPES = ("Normal_Msg", "Trans_Msg_Half", "Trans_msg_Commit", "Delay_Msg")
CONTEXT_CODES = ("SUCCESS", "TIME_OUT", "EXCEPTION", "RETURNNULL", "FAILED")

_PUB = ("timestamp", "regionId", "groupName", "topic", "msgId", "tags", "keys", "storeHost", "bodyLength",
        "costTime", "msgType")
_SUB_BEFORE = ("timestamp", "regionId", "groupName", "requestId", "msgId", "retryTimes", "keys")
_SUB_AFTER = ("requestId", "msgId", "costTime", "success", "keys")
_END_TRANSACTION = ("timestamp", "regionId", "groupName", "topic", "msgId", "tags", "keys", "storeHost", "msgType",
                    "transactionId", "transactionState", "fromTransactionCheck")
_NUMBERS = ("timestamp", "bodyLength", "costTime", "retryTimes")


def _number(text: str) -> Optional[int]:
    try:
        return int(text)
    except ValueError:
        return None


def _record(fields: List[str]) -> Optional[Dict[str, object]]:
    kind = fields[0]
    rest = fields[1:]
    if kind == "Pub" and len(rest) >= 12:
        out: Dict[str, object] = dict(zip(_PUB, rest))
        tail = rest[len(_PUB):]
        if len(tail) == 1:  # 13 fields: before offsetMsgId
            out["success"] = tail[0]
        else:
            out["offsetMsgId"], out["success"] = tail[0], tail[1]
            if len(tail) > 2:
                out["clientHost"] = tail[2]
    elif kind == "SubBefore" and len(rest) >= len(_SUB_BEFORE):
        out = dict(zip(_SUB_BEFORE, rest))
    elif kind == "SubAfter" and len(rest) >= len(_SUB_AFTER):
        out = dict(zip(_SUB_AFTER, rest))
        if len(rest) > 5:
            code = _number(rest[5])
            out["contextCode"] = CONTEXT_CODES[code] if code is not None and 0 <= code < len(CONTEXT_CODES) else rest[5]
        if len(rest) > 7:
            out["timestamp"], out["groupName"] = rest[6], rest[7]
    elif kind == "EndTransaction" and len(rest) >= len(_END_TRANSACTION):
        out = dict(zip(_END_TRANSACTION, rest))
    else:
        return None
    out["type"] = kind
    for key in _NUMBERS:
        if key in out:
            out[key] = _number(str(out[key]))
    if "success" in out:
        out["success"] = str(out["success"]).lower() == "true"
    if "msgType" in out:
        index = _number(str(out["msgType"]))
        out["msgType"] = MESSAGE_TYPES[index] if index is not None and 0 <= index < len(MESSAGE_TYPES) else out["msgType"]
    return out


def decode_records(body: bytes, limit: int = MAX_RECORDS) -> List[Dict[str, object]]:
    """The trace records of one trace message body (UTF-8); records of an unknown type or too few fields are
    skipped, as the Java decoder skips them."""
    text = body.decode("utf-8", "replace")
    out: List[Dict[str, object]] = []
    for chunk in text.split(FIELD_SPLITOR):
        if len(out) >= limit:
            break
        fields = chunk.split(CONTENT_SPLITOR)
        if len(fields) < 2:
            continue
        if fields[-1] == "":  # a CLOUD SubAfter's trailing 0x01
            fields.pop()
        record = _record(fields)
        if record is not None:
            out.append(record)
    return out


def trace_view(records: Iterable[Dict[str, object]], msg_id: str) -> Dict[str, object]:
    """The trace of ``msg_id``: its sends (``Pub``, ``EndTransaction``) and, per consumer group, each
    consumption attempt (a ``SubBefore`` joined with its ``SubAfter`` by request id), oldest first."""
    mine = [r for r in records if r.get("msgId") == msg_id]
    sends = sorted((r for r in mine if r["type"] in ("Pub", "EndTransaction")),
                   key=lambda r: (r.get("timestamp") or 0))
    befores = {r.get("requestId"): r for r in mine if r["type"] == "SubBefore"}
    afters = {r.get("requestId"): r for r in mine if r["type"] == "SubAfter"}
    groups: Dict[str, List[Dict[str, object]]] = {}
    for request_id in list(befores) + [k for k in afters if k not in befores]:
        before, after = befores.get(request_id) or {}, afters.get(request_id) or {}
        group = before.get("groupName") or after.get("groupName") or UNKNOWN_GROUP
        groups.setdefault(str(group), []).append({
            "requestId": request_id, "beginTimestamp": before.get("timestamp"), "retryTimes": before.get("retryTimes"),
            "costTime": after.get("costTime"), "success": after.get("success"), "status": after.get("contextCode"),
            "finished": bool(after),
        })
    for attempts in groups.values():
        attempts.sort(key=lambda a: (a["beginTimestamp"] or 0))
    return {"msgId": msg_id, "sends": sends, "consumers": dict(sorted(groups.items()))}
