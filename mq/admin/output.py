"""What ``mqadmin`` prints: aligned tables and ``key: value`` blocks for people, JSON for scripts.

A command returns a ``Result``: ``data`` (plain JSON values, what ``--json`` prints) and ``text`` (what is
printed otherwise). Both are built from the same values, so the two outputs always agree.

Tables are laid out by ``rich``. On a terminal (``use_terminal(True)``, set by ``mqadmin`` when stdout is one)
they get rules and bold headers; otherwise they are the original tool's plain columns, two spaces apart, no
trailing blanks and no escape codes, so that scripts can split them.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import attr
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mq.common.message import MessageExt


@attr.s(slots=True)
class Result:
    data: Any = attr.ib()
    text: str = attr.ib(default="")

    def render(self, as_json: bool) -> str:
        if as_json:
            return to_json(self.data)
        return self.text


def jsonable(value: Any) -> Any:
    """``json.dumps``'s ``default``: attrs values by their ``to_json``, bytes as text, sets and tuples as lists."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(data: Any) -> str:
    """Indented JSON, keys in the order given, non-ASCII text kept readable."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=jsonable)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: Whether tables are drawn for a terminal (rules, bold headers, fitted to its width) or as plain columns.
_terminal = False
#: Width given to rich for plain output: wide enough that no cell is ever wrapped or cut.
_PLAIN_WIDTH = 1_000_000


def use_terminal(on: bool) -> None:
    """Draw the tables of this process for a terminal (True) or as plain, parseable columns (False)."""
    global _terminal
    _terminal = on


def _render(grid: Table) -> str:
    out = io.StringIO()
    if _terminal:
        console = Console(file=out, width=shutil.get_terminal_size().columns, force_terminal=True,
                          color_system="standard", highlight=False, emoji=False)
    else:
        console = Console(file=out, width=_PLAIN_WIDTH, force_terminal=False, color_system=None, highlight=False,
                          emoji=False)
    console.print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, headers marked ``#`` as the original tool marks them."""
    if _terminal:
        grid = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False)
    else:
        grid = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style=None)
    for h in headers:
        grid.add_column(Text("#" + h), no_wrap=not _terminal, overflow="fold" if _terminal else "ignore")
    for row in rows:
        grid.add_row(*(Text(_cell(v)) for v in row))
    return _render(grid)


def key_values(mapping: Mapping[str, Any], sep: str = " : ") -> str:
    """``key : value`` lines, keys padded to one width, in the mapping's order."""
    if not mapping:
        return ""
    grid = Table.grid(padding=0)
    grid.add_column(no_wrap=True, style="bold" if _terminal else None)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=not _terminal, overflow="fold" if _terminal else "ignore")
    for k, v in mapping.items():
        grid.add_row(Text(k), Text(sep), Text(_cell(v)))
    return _render(grid)


def format_time(ms: Optional[int]) -> str:
    """Local time with milliseconds, ``2024-05-01 12:00:00,123``; empty for no time (≤ 0)."""
    if ms is None or ms <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000.0)) + f",{ms % 1000:03d}"


def join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def _host(host) -> str:
    return f"{host[0]}:{host[1]}"


def message_json(msg: MessageExt, broker_name: Optional[str] = None, with_body: bool = True) -> Dict[str, Any]:
    """A stored message as JSON: its ids, where it is stored, its properties and (optionally) its body."""
    out: Dict[str, Any] = {
        "msgId": msg.unique_key or msg.msg_id,
        "offsetMsgId": msg.msg_id,
        "topic": msg.topic,
        "tags": msg.tags,
        "keys": " ".join(msg.keys) if msg.keys else None,
    }
    if broker_name is not None:
        out["brokerName"] = broker_name
    out.update({
        "queueId": msg.queue_id,
        "queueOffset": msg.queue_offset,
        "commitLogOffset": msg.commit_log_offset,
        "reconsumeTimes": msg.reconsume_times,
        "bornTimestamp": msg.born_timestamp,
        "bornHost": _host(msg.born_host),
        "storeTimestamp": msg.store_timestamp,
        "storeHost": _host(msg.store_host),
        "sysFlag": msg.sys_flag,
        "flag": msg.flag,
        "storeSize": msg.store_size,
        "properties": dict(msg.properties),
    })
    if with_body:
        out["body"] = decode_body(msg.body)
    return out


def decode_body(body: bytes, charset: str = "utf-8") -> str:
    try:
        return body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return body.decode("utf-8", "replace")


def message_text(msg: MessageExt, broker_name: Optional[str] = None, with_body: bool = True,
                 charset: str = "utf-8") -> str:
    """The ``key: value`` block ``queryMsgById`` and friends print for one message."""
    data = message_json(msg, broker_name, with_body=False)
    lines: Dict[str, Any] = {
        "OffsetID": data["offsetMsgId"],
        "MsgId": data["msgId"],
        "Topic": data["topic"],
        "Tags": f"[{data['tags'] or ''}]",
        "Keys": f"[{data['keys'] or ''}]",
    }
    if broker_name is not None:
        lines["Broker Name"] = broker_name
    lines.update({
        "Queue ID": data["queueId"],
        "Queue Offset": data["queueOffset"],
        "CommitLog Offset": data["commitLogOffset"],
        "Reconsume Times": data["reconsumeTimes"],
        "Born Timestamp": format_time(data["bornTimestamp"]),
        "Store Timestamp": format_time(data["storeTimestamp"]),
        "Born Host": data["bornHost"],
        "Store Host": data["storeHost"],
        "System Flag": data["sysFlag"],
        "Properties": "{" + ", ".join(f"{k}={v}" for k, v in sorted(data["properties"].items())) + "}",
    })
    if with_body:
        lines["Message Body"] = decode_body(msg.body, charset)
    return key_values(lines, ": ")


def message_rows(messages: Iterable[MessageExt]) -> List[List[Any]]:
    return [[m.unique_key or m.msg_id, m.queue_id, m.queue_offset, m.tags, " ".join(m.keys)] for m in messages]
