"""The ACL admin requests (codes 50-54): change and read the broker's ``plain_acl.yml`` accounts at run time.

Every field is checked before anything is written (key lengths, perm words, IP patterns, list sizes, no
control characters); a refusal gets RocketMQ's failure code (209/210/211) and a remark naming the field. A
change is saved through ``AclStore`` (the file is replaced atomically and the new table is in force for the
next request). ``aclFileFullPath`` (53) must name one of the loaded ACL files, inside ``rocketmqHome``: no
other path is ever written.

Unlike RocketMQ 4.9, where any account with a valid signature may call these codes, the access check lets
only admin accounts through when ACL is on (see ``mq.acl``). Code 54 (removed in 4.9.8) answers with every
secret key masked: an account listing is no way to learn another account's secret.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Iterable, Optional

import attr
from twisted.logger import Logger

from mq.acl.accounts import MIN_KEY_LENGTH, Account, AclConfigError
from mq.acl.headers import (
    CreateAccessConfigRequestHeader,
    DeleteAccessConfigRequestHeader,
    GetBrokerAclConfigResponseHeader,
    UpdateGlobalWhiteAddrsConfigRequestHeader,
    split_list,
)
from mq.acl.ip_pattern import IpPatternError, compile_pattern
from mq.acl.permission import PermError, parse_perm, parse_resource_perms
from mq.acl.store import SUFFIXES, AclStore
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.header import HeaderFieldError

log = Logger()
RC = ResponseCode

#: Bounds of what one request may put in the file (RocketMQ has none).
MAX_KEY_LENGTH = 256
MAX_NAME_LENGTH = 255
MAX_LIST_ITEMS = 4096
MAX_PATTERN_LENGTH = 1024
MASK = "******"


class Refusal(ValueError):
    """A request field that cannot be taken; the message names it."""


def _plain(value: str, field: str, limit: int) -> str:
    """``value`` if it is at most ``limit`` characters with no control characters; else Refusal."""
    if len(value) > limit:
        raise Refusal(f"{field} is longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise Refusal(f"{field} contains a control character")
    return value


def _key(value: Optional[str], field: str) -> str:
    value = (value or "").strip()
    if len(value) < MIN_KEY_LENGTH:
        raise Refusal(f"{field} must be longer than {MIN_KEY_LENGTH - 1} characters")
    if any(c.isspace() for c in value):
        raise Refusal(f"{field} contains whitespace")
    return _plain(value, field, MAX_KEY_LENGTH)


def _perm(value: Optional[str], field: str) -> Optional[str]:
    if value is None or not value.strip():
        return None
    try:
        parse_perm(value)
    except PermError as e:
        raise Refusal(f"{field}: {e}") from None
    return value.strip().upper()


def _list(items: Iterable[str], field: str, limit: int) -> list:
    items = list(items)
    if len(items) > MAX_LIST_ITEMS:
        raise Refusal(f"{field} has {len(items)} entries, more than {MAX_LIST_ITEMS}")
    return [_plain(item, field, limit) for item in items]


def _perm_list(text: Optional[str], field: str) -> Optional[tuple]:
    if text is None:
        return None
    items = _list(split_list(text), field, MAX_NAME_LENGTH + 10)
    try:
        parsed = parse_resource_perms(items, field)
    except PermError as e:
        raise Refusal(str(e)) from None
    for resource, _ in parsed:
        if any(c.isspace() for c in resource):
            raise Refusal(f"{field}: resource {resource!r} contains whitespace")
    return tuple(f"{resource}={item.partition('=')[2].strip().upper()}"
                 for (resource, _), item in zip(parsed, items))


def _pattern(text: str, field: str) -> str:
    text = _plain(text.strip(), field, MAX_PATTERN_LENGTH)
    try:
        compile_pattern(text)
    except IpPatternError as e:
        raise Refusal(f"{field}: {e}") from None
    return text


class AclAdminProcessor:
    """Codes 50-54 over the broker's ``AclStore``; ``home`` is its rocketmqHome ("" when unset)."""

    def __init__(self, store: Callable[[], Optional[AclStore]], config, home: str = "") -> None:
        #: Called for every request: the store in force, or None when ACL is off (the codes then refuse).
        self.store = store
        self.config = config
        self.home = home

    def register(self, dispatcher) -> None:
        for code, fn in (
            (RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, self.update_and_create),
            (RequestCode.DELETE_ACL_CONFIG, self.delete),
            (RequestCode.GET_BROKER_CLUSTER_ACL_INFO, self.get_versions),
            (RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, self.update_global_white),
            (RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG, self.get_config),
        ):
            dispatcher.register(code, fn)

    def _change(self, request: RemotingCommand, failure: int, what: str, change) -> RemotingCommand:
        """Run ``change(store)``; a refusal or an unwritable file answers ``failure`` with the reason."""
        store = self.store()
        if store is None:
            return request.response(failure, "ACL is not enabled on this broker (aclEnable=false)")
        try:
            change(store)
        except (Refusal, AclConfigError, HeaderFieldError) as e:
            return request.response(failure, f"{what} refused: {e}")
        except OSError as e:
            log.error("ACL file not saved ({what}): {error}", what=what, error=str(e))
            return request.response(failure, f"{what} failed: the ACL file could not be written: {e.strerror}")
        return request.response(RC.SUCCESS)

    # -- 50 ------------------------------------------------------------------------------------------

    def update_and_create(self, request: RemotingCommand, channel) -> RemotingCommand:
        def change(store: AclStore) -> None:
            h = CreateAccessConfigRequestHeader.decode(request.ext_fields)
            ak = _key(h.access_key, "accessKey")
            old = store.account(ak)
            if h.secret_key is None and old is None:
                raise Refusal("secretKey is needed for a new account")
            values = {"admin": bool(h.admin)}
            if h.secret_key is not None:
                values["secret_key"] = _key(h.secret_key, "secretKey")
            if h.white_remote_address is not None:
                values["white_remote_address"] = _pattern(h.white_remote_address, "whiteRemoteAddress")
            for name, field, raw in (("default_topic_perm", "defaultTopicPerm", h.default_topic_perm),
                                     ("default_group_perm", "defaultGroupPerm", h.default_group_perm)):
                perm = _perm(raw, field)
                if perm is not None:
                    values[name] = perm
            for name, field, raw in (("topic_perms", "topicPerms", h.topic_perms),
                                     ("group_perms", "groupPerms", h.group_perms)):
                perms = _perm_list(raw, field)
                if perms is not None:
                    values[name] = perms
            # As RocketMQ: fields the request leaves out keep the account's current values (admin excepted).
            account = attr.evolve(old, **values) if old is not None else Account(ak, **values)
            store.update_account(account)
            log.info("ACL account {ak} {how} (admin={admin})", ak=ak, how="updated" if old else "created",
                     admin=account.admin)

        return self._change(request, RC.UPDATE_AND_CREATE_ACL_CONFIG_FAILED, "UPDATE_AND_CREATE_ACL_CONFIG", change)

    # -- 51 ------------------------------------------------------------------------------------------

    def delete(self, request: RemotingCommand, channel) -> RemotingCommand:
        def change(store: AclStore) -> None:
            h = DeleteAccessConfigRequestHeader.decode(request.ext_fields)
            ak = _plain(h.access_key.strip(), "accessKey", MAX_KEY_LENGTH)
            store.delete_account(ak)
            log.info("ACL account {ak} deleted", ak=ak)

        return self._change(request, RC.DELETE_ACL_CONFIG_FAILED, "DELETE_ACL_CONFIG", change)

    # -- 53 ------------------------------------------------------------------------------------------

    def acl_file_path(self, store: AclStore, given: Optional[str]) -> str:
        """The loaded ACL file ``given`` names, confined to rocketmqHome; the main file when none is given."""
        if not given or not given.strip():
            return store.main
        given = _plain(given.strip(), "aclFileFullPath", 4096)
        if not self.home:
            raise Refusal("aclFileFullPath needs the broker's rocketmqHome; leave it out to change the main file")
        home = os.path.realpath(self.home)
        path = os.path.realpath(given)
        if os.path.commonpath([home, path]) != home:
            raise Refusal(f"aclFileFullPath {given!r} is not under rocketmqHome {self.home}")
        if not path.endswith(SUFFIXES):
            raise Refusal(f"aclFileFullPath {given!r} is not a .yml or .yaml file")
        loaded = {os.path.realpath(p): p for p in store.files}
        loaded.setdefault(os.path.realpath(store.main), store.main)
        if path not in loaded:
            raise Refusal(f"aclFileFullPath {given!r} is not one of the broker's ACL files")
        return loaded[path]

    def update_global_white(self, request: RemotingCommand, channel) -> RemotingCommand:
        def change(store: AclStore) -> None:
            h = UpdateGlobalWhiteAddrsConfigRequestHeader.decode(request.ext_fields)
            patterns = [_pattern(p, "globalWhiteAddrs") for p in _list(split_list(h.global_white_addrs),
                                                                         "globalWhiteAddrs", MAX_PATTERN_LENGTH)]
            path = self.acl_file_path(store, h.acl_file_full_path)
            store.update_global_white(patterns, path)
            log.info("ACL global white list of {path} set to {patterns}", path=path, patterns=patterns)

        return self._change(request, RC.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED, "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG",
                            change)

    # -- 52, 54 --------------------------------------------------------------------------------------

    def get_versions(self, request: RemotingCommand, channel) -> RemotingCommand:
        store = self.store()
        if store is None:
            return request.response(RC.SYSTEM_ERROR, "ACL is not enabled on this broker (aclEnable=false)")
        header = GetBrokerAclConfigResponseHeader(
            version=json.dumps(store.default_file.data_version.to_json()),
            all_acl_file_version=json.dumps(store.versions()),
            broker_name=self.config.broker_name,
            broker_addr=self.config.broker_addr,
            cluster_name=self.config.broker_cluster_name,
        )
        return request.response(RC.SUCCESS, None, header.encode())

    def get_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        store = self.store()
        if store is None:
            return request.response(RC.SYSTEM_ERROR, "ACL is not enabled on this broker (aclEnable=false)")
        white, accounts = [], []
        for acl in store.files.values():
            white.extend(acl.global_white_remote_addresses)
            for account in acl.accounts:
                doc = account.to_document()
                doc["secretKey"] = MASK
                doc.setdefault("topicPerms", [])
                doc.setdefault("groupPerms", [])
                accounts.append(doc)
        body = json.dumps({"globalWhiteAddrs": white, "plainAccessConfigs": accounts}).encode("utf-8")
        return request.response(RC.SUCCESS, None, None, body)
