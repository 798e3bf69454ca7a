"""What every console API route is made of: ``Form`` (a request's fields read through typed, bounded getters),
the route table, and ``admin`` (one ``mqadmin`` command run for its JSON data).

Every field of a request goes through ``Form``: names through ``mq.common.names``, numbers within ranges,
lengths bounded, control characters refused; a route refuses fields it does not declare.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional

import attr
from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.cli import COMMANDS
from mq.admin.values import parse_timestamp
from mq.common.names import group_error, topic_error
from mq.console.config import ConsoleConfig
from mq.console.sampler import TpsSampler
from mq.console.sessions import SessionStore

MAX_TEXT = 1024
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?")


class BadRequest(ValueError):
    """A request field that is missing, unknown or out of its range: HTTP 400 with this message."""


class NotFound(AdminError):
    """What was asked for does not exist: HTTP 404."""


@attr.s(slots=True)
class Form:
    """The fields of one request (query string or JSON body), read through typed, bounded getters."""

    values: Dict[str, Any] = attr.ib()

    def _raw(self, name: str, required: bool) -> Optional[str]:
        value = self.values.get(name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if required:
                raise BadRequest(f"{name}: missing")
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise BadRequest(f"{name}: expected text, got {type(value).__name__}")
        return str(value)

    def text(self, name: str, max_length: int = MAX_TEXT, required: bool = False, strip: bool = True) -> Optional[str]:
        value = self._raw(name, required)
        if value is None:
            return None
        if len(value) > max_length:
            raise BadRequest(f"{name}: longer than {max_length} characters")
        if any(ord(c) < 32 and c not in "\t\r\n" for c in value):
            raise BadRequest(f"{name}: contains control characters")
        return value.strip() if strip else value

    def _name(self, name: str, error: Callable[[str], Optional[str]]) -> str:
        value = self.text(name, 512, required=True)
        why = error(value)
        if why is not None:
            raise BadRequest(f"{name}: {why}")
        return value

    def topic(self, name: str = "topic") -> str:
        return self._name(name, topic_error)

    def group(self, name: str = "group") -> str:
        return self._name(name, group_error)

    def integer(self, name: str, low: int, high: int, default: Optional[int] = None) -> int:
        value = self._raw(name, default is None)
        if value is None:
            return default  # type: ignore[return-value]
        if len(value) > 20 or not re.fullmatch(r"-?\d+", value.strip()):
            raise BadRequest(f"{name}: {value[:40]!r} is not an integer")
        number = int(value)
        if not low <= number <= high:
            raise BadRequest(f"{name}: {number} is outside {low}..{high}")
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._raw(name, False)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise BadRequest(f"{name}: expected true or false")
        return value.lower() == "true"

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        value = self.text(name, 64) or default
        if value not in choices:
            raise BadRequest(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    def timestamp(self, name: str, required: bool = False) -> Optional[int]:
        """Milliseconds; ``now``, milliseconds, ``yyyy-MM-dd#HH:mm:ss`` or an HTML ``yyyy-MM-ddTHH:mm[:ss]``
        (local time, what a ``datetime-local`` input sends)."""
        value = self.text(name, 64, required=required)
        if value is None:
            return None
        match = _DATETIME.fullmatch(value)
        if match:
            value = f"{match.group(1)}#{match.group(2)}{match.group(3) or ':00'}"
        try:
            ms = parse_timestamp(value)
        except ValueError as e:
            raise BadRequest(f"{name}: {e}") from None
        if not 0 <= ms < 2**63:
            raise BadRequest(f"{name}: {ms} is outside 0..2^63-1")
        return ms


@attr.s(slots=True)
class Context:
    api: MQAdminAPI = attr.ib()
    config: ConsoleConfig = attr.ib()
    sampler: Optional[TpsSampler] = attr.ib(default=None)
    csrf_token: str = attr.ib(default="")
    #: With login on: the sessions, and for one request the user and session id and a way to set the cookie.
    sessions: Optional[SessionStore] = attr.ib(default=None)
    user: Optional[str] = attr.ib(default=None)
    session_id: Optional[str] = attr.ib(default=None)
    set_session_cookie: Optional[Callable[[Optional[str]], None]] = attr.ib(default=None)
    #: A users-file user without role 1: every change is refused.
    read_only: bool = attr.ib(default=False)
    #: May change what the console does for every user (mq.console.views.CONSOLE_WIDE_ROUTES).
    console_admin: bool = attr.ib(default=True)
    #: The address the request came from (failed logins are bounded per address).
    client_host: str = attr.ib(default="")
    #: NameServer address lists used in this run, newest first (mq.console.ops; shared by every request).
    namesrv_known: List[str] = attr.ib(factory=list)
    #: Consumer monitors (mq.console.monitor.Monitors; shared by every request).
    monitors: Any = attr.ib(default=None)


@attr.s(frozen=True, slots=True)
class Route:
    method: str = attr.ib()
    handler: Callable[[Context, Form], defer.Deferred] = attr.ib()
    fields: FrozenSet[str] = attr.ib(converter=frozenset)


ROUTES: Dict[str, Route] = {}


def route(path: str, method: str = "GET", fields: Iterable[str] = ()):
    def register(fn):
        ROUTES[path] = Route(method, fn, fields)
        return fn

    return register


def admin(api: MQAdminAPI, name: str, **values: Any) -> defer.Deferred:
    """Run ``mqadmin <name>`` with ``values`` (by option name) over its defaults; its JSON data."""
    cmd = COMMANDS[name]
    namespace: Dict[str, Any] = {}
    for flags, kwargs in cmd.options:
        dest = kwargs.get("dest") or next(f for f in flags if f.startswith("--"))[2:].replace("-", "_")
        namespace[dest] = kwargs.get("default", False if kwargs.get("action") == "store_true" else None)
    unknown = set(values) - set(namespace)
    if unknown:
        raise TypeError(f"mqadmin {name} has no option {', '.join(sorted(unknown))}")
    namespace.update(values)
    return cmd.run(api, argparse.Namespace(command=name, **namespace)).addCallback(lambda result: result.data)


@defer.inlineCallbacks
def known_broker(api: MQAdminAPI, addr: str):
    """``addr`` if the NameServer lists a broker there; BadRequest otherwise (the console connects only to
    the cluster's own brokers)."""
    info = yield api.cluster_info()
    for data in info.broker_addr_table.values():
        if addr in data.broker_addrs.values():
            return addr
    raise BadRequest(f"addr: {addr[:64]!r} is not a broker the NameServer lists")
