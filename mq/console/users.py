"""The console's own users (rocketmq-dashboard's ``users.properties``) and the bound on failed logins.

``users.properties`` holds one ``name=password[,role]`` a line (role 1: admin, 0 or left out: a user who may
only look), ``#`` comments, as rocketmq-dashboard reads it. The file is read again when it changes, at the
next login, so a user can be added or removed without a restart (as the dashboard watches its file).

Failed logins are bounded per client address: past ``max_failures`` within ``window`` seconds that address is
refused (429) until the window has passed, so a password cannot be guessed at the speed of the network. The
table of addresses is bounded too (the oldest entry goes first).
"""

from __future__ import annotations

import collections
import hmac
import math
import os
import re
from typing import Deque, Dict, Optional, Tuple

import attr
from twisted.logger import Logger

from mq.admin.api import AdminError

log = Logger()

ADMIN, NORMAL = 1, 0
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class TooManyLogins(AdminError):
    """Failed logins from one address reached the bound: HTTP 429."""


@attr.s(frozen=True, slots=True)
class User:
    name: str = attr.ib()
    password: str = attr.ib()
    role: int = attr.ib(default=NORMAL)

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


def parse_users(text: str) -> Dict[str, User]:
    """``name=password[,role]`` lines; raises ValueError naming the first bad line."""
    users: Dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        name, sep, rest = line.partition("=")
        name = name.strip()
        password, _, role = rest.strip().partition(",")
        password, role = password.strip(), role.strip()
        if not sep or not _NAME.fullmatch(name):
            raise ValueError(f"line {number}: not name=password[,role] with a name of A-Z a-z 0-9 _ . @ -")
        if not password:
            raise ValueError(f"line {number}: user {name} has no password")
        if role not in ("", "0", "1"):
            raise ValueError(f"line {number}: role {role[:8]!r} of {name} is neither 0 (user) nor 1 (admin)")
        users[name] = User(name, password, int(role or NORMAL))
    return users


class UsersFile:
    """The users of a ``users.properties`` file, read again when its modification time or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: Optional[Tuple[int, int]] = None
        self._refused: Optional[Tuple[int, int]] = None
        self.users: Dict[str, User] = {}
        self.reload()  # a bad file stops the start

    def reload(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp in (self._seen, self._refused):
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
            if self._seen is not None and not text.strip():
                # an editor between its truncate and its write: keep the users read last
                raise ValueError(f"{self.path} is empty (still being written?)")
            users = parse_users(text)
        except ValueError:
            self._refused = stamp  # said once; read again when it changes
            raise
        self.users, self._seen = users, stamp

    def check(self, name: str, password: str) -> Optional[User]:
        """The user if the name and password match (compared in constant time), else None."""
        try:
            self.reload()
        except (OSError, ValueError) as e:  # keep the users read last
            log.warn("console: {path} not read again, the users read before stay: {e}", path=self.path, e=e)
        user = self.users.get(name)
        wanted = user.password if user is not None else "\0" * max(len(password), 1)
        same = hmac.compare_digest(password.encode("utf-8"), wanted.encode("utf-8"))
        return user if user is not None and same else None


def users_file_error(path: str) -> Optional[str]:
    """Why the users file at ``path`` cannot be used (checked at start), or None."""
    try:
        UsersFile(path)
    except (OSError, ValueError) as e:
        return f"{path}: {e}"
    return None


class LoginLimiter:
    """At most ``max_failures`` failed logins per client address within ``window`` seconds."""

    def __init__(self, clock, max_failures: int = 5, window: float = 60.0, max_addresses: int = 1024) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self.failures: "collections.OrderedDict[str, Deque[float]]" = collections.OrderedDict()

    def _recent(self, address: str) -> Deque[float]:
        times = self.failures.get(address)
        if times is None:
            return collections.deque()
        horizon = self.clock.seconds() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self.failures[address]
        return times

    def check(self, address: str) -> None:
        """Raises TooManyLogins if this address may not try now."""
        times = self._recent(address)
        if len(times) >= self.max_failures:
            wait = math.ceil(times[0] + self.window - self.clock.seconds())
            raise TooManyLogins(f"too many failed logins from {address}: try again in {wait} s")

    def failed(self, address: str) -> None:
        times = self._recent(address)
        self.failures[address] = times
        self.failures.move_to_end(address)
        times.append(self.clock.seconds())
        while len(times) > self.max_failures:
            times.popleft()
        while len(self.failures) > self.max_addresses:
            self.failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
