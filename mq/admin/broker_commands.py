"""``mqadmin`` broker commands (Apache's tools ``command.broker``): runtime status and settings."""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer

from mq.admin.api import (
    MQAdminAPI,
)
from mq.admin.output import Result, key_values
from mq.admin.registry import (
    BROKER_ADDR,
    CLUSTER,
    command,
    lines,
    opt,
)
from mq.admin.targets import (
    target_brokers,
)


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
