"""The access check a broker with ``aclEnable=true`` runs before every request processor.

The order and the messages are RocketMQ 4.9's ``PlainPermissionManager.validate``: global white list, an
AccessKey, a known account, the account's white address, the signature, the trace-topic exception, the admin
flag, then each resource. The signature is first checked over every extField but ``Signature`` (Java 4.9.4+,
C++, Node); only when that differs are the shapes older or buggy clients sign tried (see ``VARIANTS``).
"""

from __future__ import annotations

import hmac
from typing import AbstractSet, Mapping, Optional

from twisted.logger import Logger

from mq.acl.accounts import CompiledAccount
from mq.acl.ip_pattern import address_parts, host_of
from mq.acl.permission import PUB, check_permission
from mq.acl.resources import ADMIN_CODES, ResourceError, needed_resources
from mq.acl.signing import (
    ACCESS_KEY,
    SECURITY_TOKEN,
    SIGNATURE,
    SIGNED_CODE,
    UNIQUE_KEY_QUERY,
    sign,
    signing_content,
)
from mq.acl.store import AclStore
from mq.common.topic import RETRY_GROUP_TOPIC_PREFIX, TRACE_TOPIC
from mq.remoting.command import RemotingCommand

log = Logger()

#: The Java exception class RocketMQ names in a denied request's remark; clients match on it.
ACL_EXCEPTION = "org.apache.rocketmq.acl.common.AclException"

#: extFields some clients send but leave out of what they sign, tried only when the full content differs:
#: Java <= 4.9.3 signs only declared header fields (QUERY_MESSAGE's hand-added ``_UNIQUE_KEY_QUERY`` is not),
#: and 4.9.x brokers drop that field too; Go v2 sends ``SecurityToken`` without signing it.
VARIANTS = ((UNIQUE_KEY_QUERY,), (SECURITY_TOKEN,), (SECURITY_TOKEN, UNIQUE_KEY_QUERY))


class AccessDenied(Exception):
    """A refused request; the message is RocketMQ's text for the reason."""


def signature_matches(secret_key: str, fields: Mapping[str, str], body: Optional[bytes]) -> bool:
    """Whether ``fields[Signature]`` signs the request in any shape an official client produces."""
    received = (fields.get(SIGNATURE) or "").encode("utf-8", "replace")
    if hmac.compare_digest(sign(secret_key, signing_content(fields, body)).encode("ascii"), received):
        return True
    for leave_out in VARIANTS:
        if all(k in fields for k in leave_out):
            expected = sign(secret_key, signing_content(fields, body, leave_out=leave_out))
            if hmac.compare_digest(expected.encode("ascii"), received):
                return True
    return False


def describe(resource: str) -> str:
    """RocketMQ's ``printStr``: ``group:<g>`` for a retry topic, else ``topic:<t>``."""
    if resource.startswith(RETRY_GROUP_TOPIC_PREFIX):
        return "group:" + resource[len(RETRY_GROUP_TOPIC_PREFIX):]
    return "topic:" + resource


def check_perms(code: int, needs: Mapping[str, int], account: CompiledAccount,
                admin_codes: AbstractSet[int] = ADMIN_CODES) -> None:
    """The admin flag, then each needed resource (explicit perm, else the default); raises AccessDenied."""
    if code in admin_codes and not account.admin:
        raise AccessDenied(f"Need admin permission for request code={code}, but accessKey={account.access_key} is not")
    owned = account.perms
    if not needs or (owned is None and account.admin):
        return
    for resource, needed in needs.items():
        perm = owned.get(resource) if owned is not None else None
        if perm is None:
            is_group = resource.startswith(RETRY_GROUP_TOPIC_PREFIX)
            perm = account.default_group_perm if is_group else account.default_topic_perm
        if not check_permission(needed, perm):
            raise AccessDenied(f"No default permission for {describe(resource)}")


class AccessValidator:
    """Checks requests against the accounts of an ``AclStore`` (read afresh each time, so reloads apply)."""

    def __init__(self, store: AclStore, admin_codes: AbstractSet[int] = frozenset()) -> None:
        self.store = store
        #: Codes only an admin account may send: RocketMQ's, and the caller's (a DLedger node's Raft port).
        self.admin_codes = ADMIN_CODES | admin_codes

    def validate(self, request: RemotingCommand, remote: str) -> None:
        """Raise AccessDenied with RocketMQ's message unless ``request`` from ``remote`` (host:port) may pass."""
        table = self.store.table
        if table.global_white:
            parts = address_parts(host_of(remote))
            if any(s.match(parts) for s in table.global_white):
                return
        fields = request.ext_fields
        access_key = fields.get(ACCESS_KEY) if fields else None
        if access_key is None:
            raise AccessDenied("No accessKey is configured")
        account = table.accounts.get(access_key)
        if account is None:
            raise AccessDenied(f"No acl config for {access_key}")
        if account.white.kind != "blank" and account.white.match(address_parts(host_of(remote))):
            return
        if not signature_matches(account.secret_key, fields, request.body):
            raise AccessDenied(f"Check signature failed for accessKey={access_key}")
        signed_code = fields.get(SIGNED_CODE)
        if signed_code is not None and signed_code != str(int(request.code)):
            raise AccessDenied(f"Check signature failed for accessKey={access_key}: signed for request code "
                               f"{signed_code[:12]}, sent as {request.code}")
        try:
            needs = needed_resources(request)
        except ResourceError as e:
            raise AccessDenied(str(e)) from None
        if needs.get(TRACE_TOPIC) == PUB:
            return
        check_perms(request.code, needs, account, self.admin_codes)

    def __call__(self, request: RemotingCommand, channel) -> Optional[str]:
        """The dispatcher's hook: None to go on, else the remark of the SYSTEM_ERROR answer."""
        try:
            self.validate(request, channel.peer)
        except AccessDenied as e:
            log.debug("ACL refused {code} from {peer}: {reason}", code=request.code, peer=channel.peer, reason=str(e))
            return f"{ACL_EXCEPTION}: {e}"
        except Exception:  # noqa: BLE001 - a bug here must refuse the request, not let it through
            log.failure("ACL check of {code} from {peer}", code=request.code, peer=channel.peer)
            return f"{ACL_EXCEPTION}: the access check failed"
        return None
