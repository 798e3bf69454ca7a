"""The custom headers of the ACL admin requests (codes 50-54), shared by ``mqadmin`` and the broker.

Wire names as RocketMQ 4.9.8 declares them (``CreateAccessConfigRequestHeader`` and friends); ``required``
marks its ``@CFNotNull`` fields. ``topicPerms``/``groupPerms`` and ``globalWhiteAddrs`` travel as one
comma-separated string.
"""

from __future__ import annotations

from typing import List, Optional

import attr

from mq.remoting.header import CommandHeader, hfield


def split_list(text: Optional[str]) -> List[str]:
    """A comma-separated header value as its trimmed, non-empty items (Java's ``UtilAll.split``)."""
    if not text:
        return []
    return [item.strip() for item in text.split(",") if item.strip()]


@attr.s(slots=True)
class CreateAccessConfigRequestHeader(CommandHeader):
    """UPDATE_AND_CREATE_ACL_CONFIG (50): an absent field keeps the account's current value, except ``admin``."""

    access_key: str = hfield("accessKey", required=True)
    secret_key: Optional[str] = hfield("secretKey")
    white_remote_address: Optional[str] = hfield("whiteRemoteAddress")
    admin: bool = hfield("admin", bool, default=False)
    default_topic_perm: Optional[str] = hfield("defaultTopicPerm")
    default_group_perm: Optional[str] = hfield("defaultGroupPerm")
    topic_perms: Optional[str] = hfield("topicPerms")
    group_perms: Optional[str] = hfield("groupPerms")


@attr.s(slots=True)
class DeleteAccessConfigRequestHeader(CommandHeader):
    """DELETE_ACL_CONFIG (51)."""

    access_key: str = hfield("accessKey", required=True)


@attr.s(slots=True)
class UpdateGlobalWhiteAddrsConfigRequestHeader(CommandHeader):
    """UPDATE_GLOBAL_WHITE_ADDRS_CONFIG (53); mq takes a missing ``aclFileFullPath`` as the main file (4.9.3)."""

    global_white_addrs: str = hfield("globalWhiteAddrs", required=True)
    acl_file_full_path: Optional[str] = hfield("aclFileFullPath")


@attr.s(slots=True)
class GetBrokerAclConfigResponseHeader(CommandHeader):
    """The answer to GET_BROKER_CLUSTER_ACL_INFO (52): JSON DataVersions of the main file and of every file."""

    version: str = hfield("version", required=True)
    all_acl_file_version: Optional[str] = hfield("allAclFileVersion")
    broker_name: Optional[str] = hfield("brokerName")
    broker_addr: Optional[str] = hfield("brokerAddr")
    cluster_name: Optional[str] = hfield("clusterName")
