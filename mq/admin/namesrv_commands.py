"""``mqadmin`` NameServer commands (Apache's tools ``command.namesrv``): KV config and write permission."""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import (
    MQAdminAPI,
)
from mq.admin.output import Result
from mq.admin.registry import (
    command,
    lines,
    opt,
)


@command(
    "updateKvConfig", "Create or update KV config",
    opt("-s", "--namespace", required=True, help="set the namespace"),
    opt("-k", "--key", required=True, help="set the key name"),
    opt("-v", "--value", required=True, help="set the key value"),
)
@defer.inlineCallbacks
def update_kv_config(api: MQAdminAPI, args):
    done = yield api.put_kv_config(args.namespace, args.key, args.value)
    data = {"namespace": args.namespace, "key": args.key, "value": args.value, "nameServers": [a for a, _ in done]}
    return Result(data, "update kv config in namesrv success")


@command(
    "deleteKvConfig", "Delete KV config",
    opt("-s", "--namespace", required=True, help="set the namespace"),
    opt("-k", "--key", required=True, help="set the key name"),
)
@defer.inlineCallbacks
def delete_kv_config(api: MQAdminAPI, args):
    done = yield api.delete_kv_config(args.namespace, args.key)
    data = {"namespace": args.namespace, "key": args.key, "nameServers": [a for a, _ in done]}
    return Result(data, "delete kv config from namesrv success")


def _perm_command(verb: str, method: str):
    @defer.inlineCallbacks
    def run(api: MQAdminAPI, args):
        counts = yield getattr(api, method)(args.brokerName)
        text = [f"{verb} write perm of broker[{args.brokerName}] in name server[{addr}] OK, {n}" for addr, n in counts]
        data = {"brokerName": args.brokerName, "topicCounts": {addr: n for addr, n in counts}}
        return Result(data, lines(*text))

    return run


command("wipeWritePerm", "Wipe write perm of broker in all name server",
        opt("-b", "--brokerName", required=True, help="broker name"))(_perm_command("wipe", "wipe_write_perm"))
command("addWritePerm", "Add write perm of broker in all name server",
        opt("-b", "--brokerName", required=True, help="broker name"))(_perm_command("add", "add_write_perm"))
