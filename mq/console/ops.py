"""The NameServer the console talks to, shown and switched while it runs (rocketmq-dashboard's OPS page).

A switch is checked first: the new NameServers must answer for their cluster (GET_BROKER_CLUSTER_INFO, with
the console's signing) before anything changes. Then the console's own admin API, every logged-in session's
and the dashboard's sampler (its history starts anew, being another cluster's) use them; sessions made later
too. Addresses used in this run are offered again (at most ``MAX_KNOWN``); a restart starts from the
configured ones. ``ops/status`` tells which of them answer now; ``ops/vip`` switches the brokers' VIP channel.
"""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import MQAdminAPI
from mq.console.config import check_addresses
from mq.console.forms import BadRequest, Context, Form, route

MAX_KNOWN = 16


def _apis(ctx: Context):
    """Every admin API of this console: its own, the sampler's and each session's (once each)."""
    found = {id(ctx.api): ctx.api}
    if ctx.sampler is not None:
        found[id(ctx.sampler.api)] = ctx.sampler.api
    if ctx.sessions is not None:
        for api in (ctx.sessions.shared_api, *(s.api for s in ctx.sessions.sessions.values())):
            if api is not None:
                found[id(api)] = api
    return found.values()


def remember(ctx: Context, addrs: str) -> None:
    known = ctx.namesrv_known
    if addrs in known:
        known.remove(addrs)
    known.insert(0, addrs)
    del known[MAX_KNOWN:]


@route("ops")
def ops(ctx: Context, form: Form):
    if not ctx.namesrv_known:
        remember(ctx, ctx.config.namesrv_addr)
    return defer.succeed({"namesrvAddr": ";".join(ctx.api.namesrv_addrs), "known": list(ctx.namesrv_known),
                          "vipChannel": ctx.api.vip_channel})


@route("ops/vip", "POST", ["enabled"])
def vip_channel(ctx: Context, form: Form):
    """rocketmq-dashboard's VIP channel switch: every admin API of the console (sessions made later too) sends
    to the brokers' VIP ports (port - 2; pulls excepted) or back to their main ports."""
    enabled = form.flag("enabled", default=None)
    if enabled is None:
        raise BadRequest("enabled: missing")
    for api in _apis(ctx):
        api.vip_channel = enabled
    return defer.succeed({"vipChannel": enabled})


@route("ops/status")
@defer.inlineCallbacks
def status(ctx: Context, form: Form):
    """rocketmq-dashboard's status check: whether each NameServer the console asks answers now (for its
    cluster, GET_BROKER_CLUSTER_INFO), asked at once, each on its own."""
    addrs = list(ctx.api.namesrv_addrs)
    probes = [MQAdminAPI(ctx.api.reactor, [a], timeout=ctx.api.timeout, remoting=ctx.api.remoting).cluster_info()
              for a in addrs]
    answers = yield defer.DeferredList(probes, consumeErrors=True)
    rows = []
    for addr, (ok, result) in zip(addrs, answers):
        if ok:
            rows.append({"addr": addr, "ok": True, "brokers": len(result.broker_addr_table), "error": None})
        else:
            rows.append({"addr": addr, "ok": False, "brokers": 0, "error": result.getErrorMessage()})
    return rows


@route("ops/namesrv", "POST", ["namesrvAddr"])
@defer.inlineCallbacks
def switch_namesrv(ctx: Context, form: Form):
    """Talk to other NameServers from now on, once they answered."""
    text = form.text("namesrvAddr", 2048, required=True)
    try:
        check_addresses(text)
    except ValueError as e:
        raise BadRequest(f"namesrvAddr: {e}") from None
    addrs = [a.strip() for a in text.split(";") if a.strip()]
    if not addrs:
        raise BadRequest("namesrvAddr: give host:port[;host:port]")
    probe = MQAdminAPI(ctx.api.reactor, addrs, timeout=ctx.api.timeout, remoting=ctx.api.remoting)
    info = yield probe.cluster_info()
    if not ctx.namesrv_known:
        remember(ctx, ctx.config.namesrv_addr)
    joined = ";".join(addrs)
    for api in _apis(ctx):
        api.namesrv_addrs = list(addrs)
    ctx.config.namesrv_addr = joined
    if ctx.sampler is not None:
        ctx.sampler.reset()
    remember(ctx, joined)
    return {"namesrvAddr": joined, "clusters": sorted(info.cluster_addr_table), "known": list(ctx.namesrv_known)}
