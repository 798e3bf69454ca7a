"""The content of one ``plain_acl.yml``: the global white list, the accounts, the data version.

``Account`` keeps an account as the file writes it (perm words, ``resource=PERM`` lists) so a file saved back
reads like the one loaded; ``Account.compile`` checks it and gives the form the access check uses.
Everything is validated here, once: keys longer than 6 characters, known perm words, IP patterns that parse.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import attr

from mq.acl.ip_pattern import IpPatternError, Strategy, compile_pattern
from mq.acl.permission import DENY, PermError, parse_perm, parse_resource_perms
from mq.common.route import DataVersion
from mq.common.topic import retry_topic

#: RocketMQ refuses keys of 6 characters or fewer.
MIN_KEY_LENGTH = 7

# plain_acl.yml key names.
GLOBAL_WHITE = "globalWhiteRemoteAddresses"
ACCOUNTS = "accounts"
DATA_VERSION = "dataVersion"


class AclConfigError(ValueError):
    """A file or an account that cannot be used; the message says which and why."""


def _text(value: Any, what: str) -> str:
    """A YAML scalar as RocketMQ would read it into a String (YAML may give numbers for ``12345678``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise AclConfigError(f"{what} is a {type(value).__name__}, not a string")


def _texts(value: Any, what: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise AclConfigError(f"{what} is not a list")
    return tuple(_text(v, what) for v in value if v is not None)


def _bool(value: Any, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = _text(value, what).strip().lower()
    if text not in ("true", "false"):
        raise AclConfigError(f"{what} is {value!r}, not true or false")
    return text == "true"


@attr.s(frozen=True, slots=True)
class CompiledAccount:
    """An account ready for the access check: strategy, default bits, resource → bits (None if none)."""

    access_key: str = attr.ib()
    secret_key: str = attr.ib(repr=False)
    white: Strategy = attr.ib()
    admin: bool = attr.ib()
    default_topic_perm: int = attr.ib()
    default_group_perm: int = attr.ib()
    #: Topics by name, groups under their ``%RETRY%`` topic; None when the account lists neither.
    perms: Optional[Dict[str, int]] = attr.ib()


@attr.s(frozen=True, slots=True)
class Account:
    """One entry of ``accounts``, as written in the file (None = key absent)."""

    access_key: str = attr.ib()
    secret_key: str = attr.ib(repr=False)
    white_remote_address: str = attr.ib(default="")
    admin: bool = attr.ib(default=False)
    default_topic_perm: Optional[str] = attr.ib(default=None)
    default_group_perm: Optional[str] = attr.ib(default=None)
    topic_perms: Tuple[str, ...] = attr.ib(default=(), converter=tuple)
    group_perms: Tuple[str, ...] = attr.ib(default=(), converter=tuple)

    def compile(self) -> CompiledAccount:
        """The checked form; raises AclConfigError naming the account and what is wrong."""
        ak = self.access_key
        try:
            for name, key in (("accessKey", ak), ("secretKey", self.secret_key)):
                if len(key or "") < MIN_KEY_LENGTH:
                    raise AclConfigError(f"{name} must be longer than {MIN_KEY_LENGTH - 1} characters")
            perms: Dict[str, int] = dict(parse_resource_perms(self.topic_perms, "topicPerms"))
            for group, bits in parse_resource_perms(self.group_perms, "groupPerms"):
                perms[retry_topic(group)] = bits
            return CompiledAccount(
                ak, self.secret_key, compile_pattern(self.white_remote_address), self.admin,
                DENY if self.default_topic_perm is None else parse_perm(self.default_topic_perm),
                DENY if self.default_group_perm is None else parse_perm(self.default_group_perm),
                perms or None,
            )
        except (IpPatternError, PermError, AclConfigError) as e:
            raise AclConfigError(f"account {ak!r}: {e}") from None

    @classmethod
    def from_document(cls, data: Any) -> "Account":
        """An account from its YAML map; raises AclConfigError for a wrong shape (compile checks the values)."""
        if not isinstance(data, dict):
            raise AclConfigError(f"an account is a map of keys, not {type(data).__name__}")
        ak = _text(data.get("accessKey"), "accessKey").strip()
        where = f"account {ak!r}"
        return cls(
            ak,
            _text(data.get("secretKey"), f"{where} secretKey").strip(),
            _text(data.get("whiteRemoteAddress"), f"{where} whiteRemoteAddress").strip(),
            _bool(data.get("admin"), f"{where} admin"),
            None if data.get("defaultTopicPerm") is None else _text(data["defaultTopicPerm"], where),
            None if data.get("defaultGroupPerm") is None else _text(data["defaultGroupPerm"], where),
            _texts(data.get("topicPerms"), f"{where} topicPerms"),
            _texts(data.get("groupPerms"), f"{where} groupPerms"),
        )

    def to_document(self) -> Dict[str, Any]:
        """The YAML map, keys in RocketMQ's order, absent values left out."""
        out: Dict[str, Any] = {"accessKey": self.access_key, "secretKey": self.secret_key,
                               "whiteRemoteAddress": self.white_remote_address, "admin": self.admin}
        if self.default_topic_perm is not None:
            out["defaultTopicPerm"] = self.default_topic_perm
        if self.default_group_perm is not None:
            out["defaultGroupPerm"] = self.default_group_perm
        if self.topic_perms:
            out["topicPerms"] = list(self.topic_perms)
        if self.group_perms:
            out["groupPerms"] = list(self.group_perms)
        return out


@attr.s(slots=True)
class AclFile:
    """One ACL file: where it is and what it holds."""

    path: str = attr.ib()
    global_white_remote_addresses: List[str] = attr.ib(factory=list)
    accounts: List[Account] = attr.ib(factory=list)
    data_version: DataVersion = attr.ib(factory=DataVersion)

    def account(self, access_key: str) -> Optional[Account]:
        return next((a for a in self.accounts if a.access_key == access_key), None)

    def white_strategies(self) -> Tuple[Strategy, ...]:
        """The compiled global white list; raises AclConfigError naming a bad pattern."""
        try:
            return tuple(compile_pattern(p) for p in self.global_white_remote_addresses)
        except IpPatternError as e:
            raise AclConfigError(f"{GLOBAL_WHITE}: {e}") from None

    @classmethod
    def from_document(cls, path: str, data: Any) -> "AclFile":
        """A file from its parsed YAML (None for an empty file); raises AclConfigError for a wrong shape."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AclConfigError("the file is not a map of keys")
        accounts = data.get(ACCOUNTS) or []
        if not isinstance(accounts, list):
            raise AclConfigError(f"{ACCOUNTS} is not a list")
        versions = data.get(DATA_VERSION) or []
        if isinstance(versions, dict):
            versions = [versions]
        try:
            version = DataVersion.from_json(versions[0] if versions else None)
        except (TypeError, ValueError, AttributeError) as e:
            raise AclConfigError(f"{DATA_VERSION}: {e}") from None
        return cls(path, [p.strip() for p in _texts(data.get(GLOBAL_WHITE), GLOBAL_WHITE)],
                   [Account.from_document(a) for a in accounts], version)

    def to_document(self) -> Dict[str, Any]:
        return {
            GLOBAL_WHITE: list(self.global_white_remote_addresses),
            ACCOUNTS: [a.to_document() for a in self.accounts],
            DATA_VERSION: [self.data_version.to_json()],
        }
