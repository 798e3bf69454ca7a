"""``mqadmin`` ACL commands (RocketMQ 4.9.8 names and flags): accounts, the global white list, file versions.

They send the broker's ACL admin requests (codes 50-54) to one broker (``-b``) or every master of a cluster
(``-c``). Secret keys are never printed: ``getAclConfig`` shows them masked.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from twisted.internet import defer

from mq.acl.headers import (
    CreateAccessConfigRequestHeader,
    DeleteAccessConfigRequestHeader,
    GetBrokerAclConfigResponseHeader,
    UpdateGlobalWhiteAddrsConfigRequestHeader,
    split_list,
)
from mq.admin.api import MQAdminAPI, ResponseError, UsageError, check
from mq.admin.output import Result, format_time, table
from mq.admin.registry import BROKER_ADDR, CLUSTER, command, java_bool, lines, opt
from mq.admin.targets import target_brokers
from mq.remoting.codes import RequestCode

#: Perm words a permission may be set to (``Permission.parsePermFromString``; whitespace is trimmed).
PERM_WORDS = ("DENY", "PUB", "SUB", "PUB|SUB", "SUB|PUB")
MASK = "******"
TARGET = (("brokerAddr", "clusterName"),)


def _perm_word(text: str) -> str:
    word = text.strip()
    if word not in PERM_WORDS:
        raise UsageError(f"invalid permission '{text}': give one of {', '.join(PERM_WORDS)}")
    return word


def _perm_list(text: Optional[str], what: str) -> Optional[str]:
    """``res=PERM,res=PERM`` checked item by item; the list as sent (None when the flag was not given)."""
    if text is None:
        return None
    items = split_list(text)
    for item in items:
        name, sep, perm = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"invalid {what} item '{item}': give name=PERM")
        _perm_word(perm)
    return ",".join(items)


@defer.inlineCallbacks
def _ask_brokers(api: MQAdminAPI, args, code: int, what: str, ext: Optional[Dict[str, str]] = None):
    """[(addr, response)]: one request to each target broker in turn, stopping at the first refusal."""
    brokers = yield target_brokers(api, args)
    answers = []
    for _, addr in brokers:
        response = yield api.broker_call(addr, code, ext)
        answers.append((addr, check(response, f"{what} on broker {addr}")))
    return answers


def _each_broker(api: MQAdminAPI, args, code: int, ext: Dict[str, str], what: str, done_text: str):
    """A Deferred of the addresses done and one ``done_text`` line each."""
    def outcome(answers):
        done = [addr for addr, _ in answers]
        return done, [done_text.format(addr=addr) for addr in done]

    return _ask_brokers(api, args, code, what, ext).addCallback(outcome)


@command(
    "updateAclConfig", "Update acl config yaml file in broker",
    opt("-a", "--accessKey", required=True, help="set accessKey in acl config file"),
    opt("-s", "--secretKey", required=True, help="set secretKey in acl config file"),
    BROKER_ADDR, CLUSTER,
    opt("-w", "--whiteRemoteAddress", help="set white ip Address for account in acl config file"),
    opt("-i", "--defaultTopicPerm", help="set default topicPerm in acl config file"),
    opt("-u", "--defaultGroupPerm", help="set default GroupPerm in acl config file"),
    opt("-t", "--topicPerms", help="set topicPerms list, eg: topicA=DENY,topicD=SUB"),
    opt("-g", "--groupPerms", help="set groupPerms list, eg: groupD=DENY,groupD=SUB"),
    opt("-m", "--admin", type=java_bool, default=False, metavar="true|false",
        help="set admin flag in acl config file"),
    one_of=TARGET,
)
def update_acl_config(api: MQAdminAPI, args):
    header = CreateAccessConfigRequestHeader(
        access_key=args.accessKey,
        secret_key=args.secretKey,
        white_remote_address=args.whiteRemoteAddress,
        admin=args.admin,
        default_topic_perm=_perm_word(args.defaultTopicPerm) if args.defaultTopicPerm is not None else None,
        default_group_perm=_perm_word(args.defaultGroupPerm) if args.defaultGroupPerm is not None else None,
        topic_perms=_perm_list(args.topicPerms, "topicPerms"),
        group_perms=_perm_list(args.groupPerms, "groupPerms"),
    )
    shown = {k: v for k, v in header.encode().items() if k != "secretKey"}

    def report(outcome):
        done, text = outcome
        summary = "PlainAccessConfig [" + ", ".join(f"{k}={v}" for k, v in shown.items()) + "]"
        return Result({"brokers": done, "accessConfig": shown}, lines(*text, summary))

    return _each_broker(api, args, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, header.encode(),
                        f"update acl config of '{args.accessKey}'",
                        "create or update plain access config to {addr} success.").addCallback(report)


@command(
    "deleteAclConfig", "Delete Acl Config Account in broker",
    opt("-a", "--accessKey", required=True, help="set accessKey in acl config file for deleting which account"),
    BROKER_ADDR, CLUSTER,
    one_of=TARGET,
)
def delete_acl_config(api: MQAdminAPI, args):
    ext = DeleteAccessConfigRequestHeader(access_key=args.accessKey).encode()
    return _each_broker(api, args, RequestCode.DELETE_ACL_CONFIG, ext, f"delete acl config of '{args.accessKey}'",
                        "delete plain access config account from {addr} success.").addCallback(
        lambda outcome: Result({"accessKey": args.accessKey, "brokers": outcome[0]}, lines(*outcome[1])))


@command(
    "updateGlobalWhiteAddr", "Update global white address for acl Config File in broker",
    opt("-g", "--globalWhiteRemoteAddresses", required=True,
        help="set globalWhiteRemoteAddress list, eg: 10.10.103.*,192.168.0.*"),
    opt("-p", "--aclFileFullPath", help="update global white address of this acl file (under ROCKETMQ_HOME)"),
    BROKER_ADDR, CLUSTER,
    one_of=TARGET,
)
def update_global_white_addr(api: MQAdminAPI, args):
    addrs = ",".join(split_list(args.globalWhiteRemoteAddresses))
    ext = UpdateGlobalWhiteAddrsConfigRequestHeader(global_white_addrs=addrs,
                                                    acl_file_full_path=args.aclFileFullPath).encode()
    return _each_broker(api, args, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, ext, "update global white addrs",
                        "update global white remote addresses to {addr} success.").addCallback(
        lambda outcome: Result({"globalWhiteRemoteAddresses": split_list(addrs), "brokers": outcome[0]},
                               lines(*outcome[1])))


def _data_version(text: Optional[str]) -> Dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@command(
    "clusterAclConfigVersion", "List all of acl config version information in cluster",
    BROKER_ADDR, CLUSTER,
    one_of=TARGET,
)
@defer.inlineCallbacks
def cluster_acl_config_version(api: MQAdminAPI, args):
    answers = yield _ask_brokers(api, args, RequestCode.GET_BROKER_CLUSTER_ACL_INFO, "acl config version")
    rows, data = [], []
    for addr, response in answers:
        header = GetBrokerAclConfigResponseHeader.decode(response.ext_fields)
        files = _data_version(header.all_acl_file_version) or {"": _data_version(header.version)}
        for path, version in sorted(files.items()):
            version = version if isinstance(version, dict) else {}
            entry = {"clusterName": header.cluster_name, "brokerName": header.broker_name, "brokerAddr": addr,
                     "aclFilePath": path, "counter": version.get("counter"), "timestamp": version.get("timestamp")}
            data.append(entry)
            stamp = entry["timestamp"]
            rows.append([entry["clusterName"], entry["brokerName"], addr, path, entry["counter"],
                         format_time(stamp) if isinstance(stamp, int) else ""])
    headers = ["Cluster Name", "Broker Name", "Broker Addr", "AclFilePath", "AclConfigVersionNum",
               "AclLastUpdateTime"]
    return Result(data, table(headers, rows))


def _account_lines(account: Dict[str, Any]) -> List[str]:
    order = ("accessKey", "secretKey", "whiteRemoteAddress", "admin", "defaultTopicPerm", "defaultGroupPerm",
             "topicPerms", "groupPerms")
    return [f"{k:<20}: {account.get(k) if account.get(k) is not None else ''}" for k in order]


@command(
    "getAclConfig", "List all of acl config information in cluster (4.6-4.9.7: getAccessConfigSubCommand)",
    BROKER_ADDR, CLUSTER,
    one_of=TARGET,
)
@defer.inlineCallbacks
def get_acl_config(api: MQAdminAPI, args):
    answers = yield _ask_brokers(api, args, RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG, "acl config")
    data: Dict[str, Any] = {}
    text: List[str] = []
    for addr, response in answers:
        try:
            body = json.loads((response.body or b"{}").decode("utf-8"))
        except ValueError as e:
            raise ResponseError(f"acl config of broker {addr}: unreadable answer: {e}", response.code, None)
        accounts = [dict(a, secretKey=MASK) for a in body.get("plainAccessConfigs") or [] if isinstance(a, dict)]
        white = list(body.get("globalWhiteAddrs") or [])
        data[addr] = {"globalWhiteAddrs": white, "plainAccessConfigs": accounts}
        text.append(f"============{addr}============")
        text.append(f"globalWhiteRemoteAddresses: {white}")
        text.append("accounts:")
        for account in accounts:
            text.extend("    " + line for line in _account_lines(account))
            text.append("")
    return Result(data, lines(*text).rstrip("\n"))


# The 4.6-4.9.7 name of getAclConfig, for scripts written against those versions.
command("getAccessConfigSubCommand", "Same as getAclConfig (its 4.6-4.9.7 name)", BROKER_ADDR, CLUSTER,
        one_of=TARGET)(get_acl_config)
