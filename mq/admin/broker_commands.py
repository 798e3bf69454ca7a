"""``mqadmin`` broker commands (Apache's tools ``command.broker``): runtime status and settings."""

from __future__ import annotations

from typing import Any, Callable, Dict

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.output import Result, key_values
from mq.admin.probe import MAX_PROBE_SIZE, MAX_PROBES, broker_topic_queues, filler, timed_send
from mq.admin.registry import (
    BROKER_ADDR,
    CLUSTER,
    bounded_int,
    command,
    lines,
    opt,
)
from mq.admin.targets import (
    target_brokers,
)
from mq.broker.dledger.transport import LEADERSHIP_TRANSFER
from mq.remoting.codes import RequestCode

#: The body text of the original sendMsgStatus.
PATTERN = b"hello jodie"


@defer.inlineCallbacks
def _broker_tables(api: MQAdminAPI, args, fetch: Callable, render: Callable):
    """``fetch(addr)`` (a dict) of each target broker, sorted by key; ``render(label, addr, table)`` the text."""
    brokers = yield target_brokers(api, args)
    data, blocks = {}, []
    for label, addr in brokers:
        values = yield fetch(addr)
        data[addr] = dict(sorted(values.items()))
        blocks.append(render(label, addr, data[addr]))
    return Result(data, "\n".join(blocks))


@command("brokerStatus", "Fetch broker runtime status data", BROKER_ADDR, CLUSTER,
         one_of=(("brokerAddr", "clusterName"),))
def broker_status(api: MQAdminAPI, args):
    def render(label: str, addr: str, status: dict) -> str:
        if args.brokerAddr:
            return key_values(status)
        return key_values({f"{label:<24} {addr:<22} {k}": v for k, v in status.items()})

    return _broker_tables(api, args, api.broker_runtime_info, render)


@command("getBrokerConfig", "Get broker config by cluster or special broker", BROKER_ADDR, CLUSTER,
         one_of=(("brokerAddr", "clusterName"),))
def get_broker_config(api: MQAdminAPI, args):
    return _broker_tables(api, args, api.broker_config,
                          lambda label, addr, config: f"============{addr}============\n" + key_values(config, " = "))


@command(
    "updateBrokerConfig", "Update broker's config",
    BROKER_ADDR, CLUSTER,
    opt("-k", "--key", required=True, help="config key"),
    opt("-v", "--value", required=True, help="config value"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def update_broker_config(api: MQAdminAPI, args):
    brokers = yield target_brokers(api, args)
    done = []
    for _, addr in brokers:
        yield api.update_broker_config(addr, {args.key: args.value})
        done.append(addr)
    text = lines(*(f"update broker config success, {addr}" for addr in done))
    return Result({"key": args.key, "value": args.value, "brokers": done}, text)


def send_result_text(result: Dict[str, Any], topic: str) -> str:
    """The original's ``SendResult [...]``."""
    return (f"SendResult [sendStatus={result['sendStatus']}, msgId={result['msgId']}, "
            f"offsetMsgId={result['offsetMsgId']}, messageQueue=MessageQueue [topic={topic}, "
            f"brokerName={result['brokerName']}, queueId={result['queueId']}], queueOffset={result['queueOffset']}]")


@command(
    "sendMsgStatus", "send msg to broker.",
    opt("-b", "--brokerName", required=True, help="Broker Name"),
    opt("-s", "--messageSize", type=bounded_int(1, MAX_PROBE_SIZE), default=128, help="Message Size, Default: 128"),
    opt("-c", "--count", type=bounded_int(1, MAX_PROBES), default=50, help="send message count, Default: 50"),
)
@defer.inlineCallbacks
def send_msg_status(api: MQAdminAPI, args):
    """Sends to the topic named after the broker: one small message first (it sets the connection up; a
    failure there ends the command), then ``count`` messages of ``messageSize`` bytes, each with its time."""
    addr, ids = yield broker_topic_queues(api, args.brokerName)
    _, error, _ = yield timed_send(api, addr, args.brokerName, args.brokerName, ids[0], filler(16, PATTERN))
    if error is not None:
        raise AdminError(f"first send to broker '{args.brokerName}' failed: {error}")
    body = filler(args.messageSize, PATTERN)
    text, data = [], []
    for i in range(args.count):
        result, error, rt = yield timed_send(api, addr, args.brokerName, args.brokerName, ids[i % len(ids)], body)
        outcome = send_result_text(result, args.brokerName) if result else f"failed: {error}"
        text.append(f"rt:{rt:.0f}ms, SendResult={outcome}")
        data.append({"rtMs": rt, "sendResult": result, "error": error})
    return Result(data, lines(*text))


#: The store commands' ``-c``: ``--cluster`` as the original spells it, ``--clusterName`` as the others here do.
_CLUSTER = opt("-c", "--cluster", "--clusterName", dest="clusterName", metavar="CLUSTER",
               help="every broker of this cluster, masters and slaves")


def _clean_command(name: str, help_text: str, code: int, what: str):
    """A command that sends one store cleaning request to ``-b``, or, as the original, to every broker (masters
    and slaves: each cleans its own store) of ``-c`` or of every cluster, and prints ``success`` per broker."""
    @defer.inlineCallbacks
    def run(api: MQAdminAPI, args):
        if args.brokerAddr:
            brokers = yield target_brokers(api, args)
        else:
            info = yield api.cluster_info()
            if args.clusterName and args.clusterName not in info.cluster_addr_table:
                raise AdminError(f"cluster '{args.clusterName}' not found on the NameServer")
            clusters = [args.clusterName] if args.clusterName else sorted(info.cluster_addr_table)
            brokers = [b for cluster in clusters for b in info.all_addrs(cluster)]
        done = []
        for _, addr in brokers:
            yield api.broker_ok(addr, code, what)
            done.append(addr)
        return Result({"brokers": done}, lines(*(f"{addr}: success" for addr in done)))

    run.__doc__ = help_text
    command(name, help_text, BROKER_ADDR, _CLUSTER)(run)
    return run


clean_expired_cq = _clean_command("cleanExpiredCQ", "Clean expired ConsumeQueue on broker.",
                                  RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE, "clean expired ConsumeQueues")
clean_unused_topic = _clean_command("cleanUnusedTopic", "Clean unused topic on broker.",
                                    RequestCode.CLEAN_UNUSED_TOPIC, "clean unused topics")
delete_expired_commit_log = _clean_command("deleteExpiredCommitLog", "Delete expired CommitLog files",
                                           RequestCode.DELETE_EXPIRED_COMMITLOG, "delete expired CommitLog files")


@command(
    "transferLeadership", "Hand a DLedger group's leadership to another of its nodes (DLedger's LEADERSHIP_TRANSFER)",
    opt("-b", "--brokerAddr", required=True, metavar="ADDR", help="the group's leader (its broker address)"),
    opt("-t", "--transfereeId", required=True, metavar="ID", help="the node to lead, as in dLegerPeers (n1)"),
)
@defer.inlineCallbacks
def transfer_leadership(api: MQAdminAPI, args):
    response = yield api.broker_ok(args.brokerAddr, LEADERSHIP_TRANSFER, "leadership transfer",
                                   {"transfereeId": args.transfereeId})
    remark = response.remark or f"leadership handed to {args.transfereeId}"
    return Result({"broker": args.brokerAddr, "transfereeId": args.transfereeId, "remark": remark}, remark)
