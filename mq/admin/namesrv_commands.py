"""``mqadmin`` NameServer commands (Apache's tools ``command.namesrv``): KV config and write permission."""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import MQAdminAPI, UsageError
from mq.admin.output import Result, key_values
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


@command("getNamesrvConfig", "Get configs of name server.")
@defer.inlineCallbacks
def get_namesrv_config(api: MQAdminAPI, args):
    """The settings of every NameServer of ``-n`` (or ``$NAMESRV_ADDR``), as each one reports them."""
    configs = yield api.namesrv_configs()
    data = {addr: dict(sorted(values.items())) for addr, values in configs}
    blocks = [f"============{addr}============\n" + key_values(values, " = ") for addr, values in data.items()]
    return Result(data, "\n".join(blocks))


@command(
    "updateNamesrvConfig", "Update configs of name server.",
    opt("-k", "--key", required=True, help="config key"),
    opt("-v", "--value", required=True, help="config value"),
)
@defer.inlineCallbacks
def update_namesrv_config(api: MQAdminAPI, args):
    """UPDATE_NAMESRV_CONFIG on every NameServer of the list; a NameServer refuses unknown keys, keys that
    cannot change while it runs and values out of range (exit 1, its remark says which)."""
    key = args.key.strip()
    if not key or any(c in key for c in "=:\n\r"):
        raise UsageError(f"invalid config key {args.key!r}")
    done = yield api.update_namesrv_config({key: args.value.strip()})
    addrs = [a for a, _ in done]
    text = f"update name server config success!{addrs}\n{key} : {args.value.strip()}"
    return Result({"key": key, "value": args.value.strip(), "nameServers": addrs}, text)
