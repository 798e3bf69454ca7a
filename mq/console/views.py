"""The console's JSON API: one function per ``/api/<path>``, each a thin layer over ``mqadmin``'s commands.

The figures come from the same command functions ``mqadmin`` runs (``mq.admin.cli``), so the console and the
tool always agree and the console works against any RocketMQ 4.x cluster. What is added here is the checking
(``mq.console.forms``) and one rule: an address the console would connect to must be one the NameServer lists,
so a request cannot make the console reach any other host.
"""

from __future__ import annotations

import re
import time
from typing import List

from twisted.internet import defer

from mq import __version__
from mq.acl.accounts import MIN_KEY_LENGTH
from mq.admin.acl_commands import PERM_WORDS
from mq.admin.api import AdminError, ResponseError
from mq.admin.message_commands import choose_send_queue
from mq.admin.values import route_masters
from mq.common.message import decode_offset_msg_id
from mq.common.names import retry_group_error
from mq.common.topic import TRACE_TOPIC
from mq.common.trace_data import trace_views
from mq.console.dlq import client_id_field
from mq.console.forms import BadRequest, Context, Form, NotFound, admin, known_broker, route
from mq.console.history import DAY
from mq.console.sampler import first_rate, topic_kind
from mq.console.trace import trace_page
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC

#: Characters of a message body shown in a list (the detail view shows the body whole).
LIST_BODY_CHARS = 200
#: Most topics one list returns.
MAX_TOPICS = 10_000
KINDS = ("all", "normal", "retry", "dlq", "system")
_HEX_ID = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{56}")
_CONFIG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,127}")
_ACL_KEY = re.compile(r"[A-Za-z0-9_.@+/-]+")


def short_bodies(messages: List[dict]) -> List[dict]:
    for m in messages:
        body = m.get("body")
        if isinstance(body, str) and len(body) > LIST_BODY_CHARS:
            m["body"] = body[:LIST_BODY_CHARS] + "…"
    return messages


# --------------------------------------------------------------------------------------------- session


#: Routes served without a login when login is on.
OPEN_ROUTES = frozenset({"session", "login", "logout"})
#: Changes to the console itself, seen by every user: its NameServers, the VIP channel, consumer monitors. With
#: login on, only an admin may make them (a brokers' admin account, or role 1 of the users file): no broker
#: checks them, and a session pointed at a NameServer of someone else's would send every user's signed
#: requests there.
CONSOLE_WIDE_ROUTES = frozenset({"ops/namesrv", "ops/vip", "monitor/set", "monitor/delete"})


@route("session")
def session(ctx: Context, form: Form):
    return defer.succeed({"csrf": ctx.csrf_token, "version": __version__, "namesrv": ctx.api.namesrv_addrs,
                          "maxMessages": ctx.config.max_messages, "loginRequired": ctx.sessions is not None,
                          "loginKind": ctx.sessions.kind if ctx.sessions is not None else None,
                          "user": ctx.user, "readOnly": ctx.read_only, "consoleAdmin": ctx.console_admin})


@route("login", "POST", ["accessKey", "secretKey", "username", "password"])
@defer.inlineCallbacks
def login(ctx: Context, form: Form):
    """Log in as an ACL account (accessKey, secretKey) or, with a users file, a console user (username,
    password)."""
    if ctx.sessions is None:
        raise BadRequest("login is off: the console acts with its own account")
    if ctx.sessions.kind == "users":
        name = form.text("username", 64, required=True)
        secret = form.text("password", 128, required=True, strip=False)
    else:
        name, secret = _acl_key(form, "accessKey"), _acl_key(form, "secretKey")
    made = yield ctx.sessions.login(name, secret, ctx.client_host)
    ctx.set_session_cookie(made.id)
    return {"user": made.user, "readOnly": not made.admin}


@route("logout", "POST")
def logout(ctx: Context, form: Form):
    if ctx.sessions is not None:
        ctx.sessions.logout(ctx.session_id)
        ctx.set_session_cookie(None)
    return defer.succeed({"user": None})


@route("dashboard")
def dashboard(ctx: Context, form: Form):
    if ctx.sampler is None:
        return defer.succeed({"interval": 0, "rounds": 0, "error": "sampling is off", "brokers": {}, "topics": {}})
    return defer.succeed(ctx.sampler.snapshot())


@route("dashboard/day", fields=["date"])
def dashboard_day(ctx: Context, form: Form):
    """One kept day's TPS lines (rocketmq-dashboard's per-day broker and topic charts)."""
    day = form.text("date", 10, required=True)
    if not DAY.match(day):
        raise BadRequest("date: give yyyy-mm-dd")
    if ctx.sampler is None:
        return defer.succeed({"day": day, "days": [], "step": 0, "brokers": {}, "topics": {}})
    return ctx.sampler.day(day)


# --------------------------------------------------------------------------------------------- cluster


@route("cluster")
@defer.inlineCallbacks
def cluster(ctx: Context, form: Form):
    brokers = yield admin(ctx.api, "clusterList")
    info = yield ctx.api.cluster_info()
    return {"clusters": sorted(info.cluster_addr_table), "brokers": brokers}


@route("broker", fields=["addr"])
@defer.inlineCallbacks
def broker(ctx: Context, form: Form):
    addr = yield known_broker(ctx.api, form.text("addr", 128, required=True))
    status = yield ctx.api.broker_runtime_info(addr)
    config = yield ctx.api.broker_config(addr)
    return {"addr": addr, "runtime": dict(sorted(status.items())), "config": dict(sorted(config.items()))}


@route("broker/config", "POST", ["addr", "key", "value"])
@defer.inlineCallbacks
def broker_config_update(ctx: Context, form: Form):
    """Change one setting of one broker at run time (UPDATE_BROKER_CONFIG); the broker decides which settings
    may change and within which range, and says why it refuses."""
    addr = yield known_broker(ctx.api, form.text("addr", 128, required=True))
    key = form.text("key", 128, required=True)
    if not _CONFIG_KEY.fullmatch(key):
        raise BadRequest(f"key: {key[:64]!r} is not a setting name")
    value = form.text("value", 1024, required=True)
    if any(c in value for c in "\r\n"):
        raise BadRequest("value: one line")
    yield ctx.api.update_broker_config(addr, {key: value})
    config = yield ctx.api.broker_config(addr)
    return {"addr": addr, "key": key, "value": config.get(key)}


@route("replication")
@defer.inlineCallbacks
def replication(ctx: Context, form: Form):
    """Per broker group: each member's role and CommitLog end, and how many bytes each slave is behind."""
    info = yield ctx.api.cluster_info()
    groups = []
    for name in sorted(info.broker_addr_table):
        data = info.broker_addr_table[name]
        members = []
        for bid, addr in sorted(data.broker_addrs.items()):
            try:
                status = yield ctx.api.broker_runtime_info(addr)
                error = None
            except AdminError as e:
                status, error = {}, str(e)
            end = status.get("commitLogMaxOffset")
            members.append({"brokerId": bid, "addr": addr, "role": status.get("brokerRole"),
                            "commitLogMaxOffset": int(end) if end is not None and end.isdigit() else None,
                            "putTps": first_rate(status.get("putTps", "")), "error": error})
        master = next((m for m in members if m["brokerId"] == 0), None)
        master_end = master["commitLogMaxOffset"] if master else None
        for m in members:
            behind = None
            if m["brokerId"] != 0 and master_end is not None and m["commitLogMaxOffset"] is not None:
                behind = max(0, master_end - m["commitLogMaxOffset"])
            m["behindBytes"] = behind
        groups.append({"brokerName": name, "cluster": info.cluster_of(name), "members": members})
    return groups


# --------------------------------------------------------------------------------------------- topics


@route("topics", fields=["kind", "filter"])
@defer.inlineCallbacks
def topics(ctx: Context, form: Form):
    kind = form.choice("kind", KINDS, "all")
    needle = (form.text("filter", 256) or "").lower()
    names = yield ctx.api.all_topics()
    info = yield ctx.api.cluster_info()
    special = frozenset(info.cluster_addr_table) | frozenset(info.broker_addr_table)
    rows = []
    for topic in names:
        k = topic_kind(topic, special)
        if (kind == "all" or k == kind) and needle in topic.lower():
            rows.append({"topic": topic, "kind": k})
    return {"topics": rows[:MAX_TOPICS], "truncated": len(rows) > MAX_TOPICS,
            "clusters": sorted(info.cluster_addr_table)}


@defer.inlineCallbacks
def _cluster_field(ctx: Context, form: Form):
    """The ``cluster`` field, or the only cluster when there is one."""
    name = form.text("cluster", 128)
    info = yield ctx.api.cluster_info()
    if name is None:
        if len(info.cluster_addr_table) != 1:
            raise BadRequest("cluster: missing (the NameServer knows more than one cluster)")
        return next(iter(info.cluster_addr_table))
    if name not in info.cluster_addr_table:
        raise BadRequest(f"cluster: {name!r} is not a cluster the NameServer knows")
    return name


MAX_CHOSEN_BROKERS = 256
#: The producer group of the console's transactional test messages.
TRANSACTION_TEST_GROUP = "CONSOLE_TRANSACTION_PRODUCER"


@defer.inlineCallbacks
def _chosen_brokers(ctx: Context, form: Form, cluster_name: str):
    """The ``brokers`` field (rocketmq-dashboard's broker choice): the masters of those broker names of the
    cluster, [(name, addr)]; None when it is left out (the whole cluster)."""
    names = form.values.get("brokers")
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BadRequest("brokers: a list of broker names")
    if len(names) > MAX_CHOSEN_BROKERS:
        raise BadRequest(f"brokers: {len(names)} names, more than {MAX_CHOSEN_BROKERS}")
    info = yield ctx.api.cluster_info()
    masters = dict(info.master_addrs(cluster_name))
    unknown = [n for n in names if n not in masters]
    if unknown:
        raise BadRequest(f"brokers: {unknown[0][:128]!r} is not a broker of {cluster_name!r} with a live master")
    return [(n, masters[n]) for n in dict.fromkeys(names)]


@defer.inlineCallbacks
def _on_cluster_or_brokers(ctx: Context, form: Form, command: str, **values):
    """``mqadmin <command>`` on the whole cluster, or broker by broker on the chosen ones (their ``brokers``
    results joined)."""
    cluster_name = yield _cluster_field(ctx, form)
    chosen = yield _chosen_brokers(ctx, form, cluster_name)
    if chosen is None:
        result = yield admin(ctx.api, command, clusterName=cluster_name, **values)
        return result
    result = {}
    for _, addr in chosen:
        one = yield admin(ctx.api, command, brokerAddr=addr, **values)
        result = dict(one, brokers=result.get("brokers", []) + one.get("brokers", []))
    return result


@route("topic/create", "POST", ["topic", "cluster", "brokers", "readQueueNums", "writeQueueNums", "perm", "order"])
def topic_create(ctx: Context, form: Form):
    return _on_cluster_or_brokers(ctx, form, "updateTopic", topic=form.topic(),
                                  readQueueNums=form.integer("readQueueNums", 1, 1024, 8),
                                  writeQueueNums=form.integer("writeQueueNums", 1, 1024, 8),
                                  perm=int(form.choice("perm", ("2", "4", "6"), "6")), order=form.flag("order"))


@route("topic/delete", "POST", ["topic", "cluster"])
@defer.inlineCallbacks
def topic_delete(ctx: Context, form: Form):
    topic = form.topic()
    cluster_name = yield _cluster_field(ctx, form)
    result = yield admin(ctx.api, "deleteTopic", topic=topic, clusterName=cluster_name)
    return result


@route("topic/delete-in-broker", "POST", ["topic", "broker"])
@defer.inlineCallbacks
def topic_delete_in_broker(ctx: Context, form: Form):
    """rocketmq-dashboard's "delete on one broker": only that broker's master forgets the topic (the NameServer
    drops the broker from the route at its next registration)."""
    topic = form.topic()
    broker = form.text("broker", 128, required=True)
    route_data = yield ctx.api.topic_route(topic)
    addr = route_masters(route_data).get(broker)
    if addr is None:
        raise BadRequest(f"broker: {broker!r} is not a broker of {topic!r} with a live master")
    yield ctx.api.delete_topic_in_broker(addr, topic)
    return {"topic": topic, "broker": broker, "addr": addr}


@route("topic/config", fields=["topic"])
@defer.inlineCallbacks
def topic_config(ctx: Context, form: Form):
    """The topic's config on each master of its route (rocketmq-dashboard's "topic config"), as that broker
    holds it (GET_ALL_TOPIC_CONFIG, which every 4.x broker answers)."""
    topic = form.topic()
    route_data = yield ctx.api.topic_route(topic)
    rows = []
    for name, addr in sorted(route_masters(route_data).items()):
        table = yield ctx.api.broker_table(addr, RequestCode.GET_ALL_TOPIC_CONFIG, "topic configs", "topicConfigTable")
        config = table.get(topic)
        if isinstance(config, dict):
            rows.append({"brokerName": name, "addr": addr, **config})
    return rows


@route("topic/route", fields=["topic"])
def topic_route(ctx: Context, form: Form):
    return admin(ctx.api, "topicRoute", topic=form.topic())


@route("topic/status", fields=["topic"])
def topic_status(ctx: Context, form: Form):
    return admin(ctx.api, "topicStatus", topic=form.topic())


@route("topic/consumers", fields=["topic"])
@defer.inlineCallbacks
def topic_consumers(ctx: Context, form: Form):
    """The groups that consume the topic, each with its progress on the topic's queues."""
    topic = form.topic()
    route_data = yield admin(ctx.api, "topicRoute", topic=topic)
    groups: List[str] = []
    for b in sorted(route_data.get("brokerDatas") or [], key=lambda b: b.get("brokerName", "")):
        addr = (b.get("brokerAddrs") or {}).get("0") or (b.get("brokerAddrs") or {}).get(0)
        if addr:
            try:
                groups = sorted(set(groups) | set((yield ctx.api.topic_consumed_by(addr, topic))))
            except AdminError:
                continue
    out = []
    for group in groups:
        try:
            progress = yield admin(ctx.api, "consumerProgress", groupName=group)
            queues = [q for q in progress["queues"] if q["topic"] == topic]
        except AdminError:
            queues = []
        out.append({"group": group, "diffTotal": sum(q["diff"] for q in queues), "queues": queues})
    return out


@route("topic/send", "POST", ["topic", "tags", "keys", "body", "transactional"])
@defer.inlineCallbacks
def topic_send(ctx: Context, form: Form):
    """A test message (mqadmin sendMessage); ``transactional``: as a transaction that commits (rocketmq-dashboard
    2.x's transactional variant: a half message, then END_TRANSACTION commit)."""
    topic = form.topic()
    tags = form.text("tags", 255)
    keys = form.text("keys", 255)
    body = form.text("body", ctx.config.max_body_bytes, required=True, strip=False)
    if not form.flag("transactional"):
        sent = yield admin(ctx.api, "sendMessage", topic=topic, body=body, tags=tags, key=keys)
        return sent
    addr, name, queue_id = yield choose_send_queue(ctx.api, topic)
    sent = yield ctx.api.send_committed_transaction(addr, name, topic, queue_id, body.encode("utf-8"), tags, keys,
                                                    TRANSACTION_TEST_GROUP)
    return sent


# --------------------------------------------------------------------------------------------- consumers


@route("consumers", fields=["filter"])
@defer.inlineCallbacks
def consumers(ctx: Context, form: Form):
    needle = (form.text("filter", 256) or "").lower()
    groups = yield admin(ctx.api, "consumerProgress")
    rows = [g for g in groups if needle in g["group"].lower()]
    if ctx.monitors is not None:  # rocketmq-dashboard's consumer monitor: the groups past their bounds
        for row in rows:
            row["alarm"] = ctx.monitors.alarms(row)
    return rows


@route("consumer/progress", fields=["group"])
@defer.inlineCallbacks
def consumer_progress(ctx: Context, form: Form):
    group = form.group()
    try:
        result = yield admin(ctx.api, "consumerProgress", groupName=group)
    except AdminError as e:
        if isinstance(e, ResponseError):
            raise
        raise NotFound(str(e)) from None
    result["at"] = int(time.time() * 1000)
    return result


@route("consumer/config", fields=["group"])
@defer.inlineCallbacks
def consumer_config(ctx: Context, form: Form):
    """The group's subscription config on each master that holds it (rocketmq-dashboard's
    examineSubscriptionGroupConfig: GET_ALL_SUBSCRIPTIONGROUP_CONFIG, which every 4.x broker answers)."""
    group = form.group()
    info = yield ctx.api.cluster_info()
    rows = []
    for cluster_name in sorted(info.cluster_addr_table):
        for name, addr in info.master_addrs(cluster_name):
            table = yield ctx.api.broker_table(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
                                               "subscription groups", "subscriptionGroupTable")
            config = table.get(group)
            if isinstance(config, dict):
                rows.append({"cluster": cluster_name, "brokerName": name, "addr": addr, **config})
    return rows


@route("consumer/connection", fields=["group"])
@defer.inlineCallbacks
def consumer_connection(ctx: Context, form: Form):
    try:
        result = yield admin(ctx.api, "consumerConnection", consumerGroup=form.group())
    except ResponseError as e:
        if e.code != RC.CONSUMER_NOT_ONLINE:
            raise
        return {"connectionSet": [], "subscriptionTable": {}, "offline": True}
    return result


@route("consumer/reset-offset", "POST", ["group", "topic", "timestamp"])
def consumer_reset_offset(ctx: Context, form: Form):
    """Reset the group's offsets on the topic to the first message stored at or after ``timestamp``; with
    ``timestamp`` left out, to now: the backlog is skipped."""
    group, topic = form.group(), form.topic()
    ms = form.timestamp("timestamp")
    stamp = str(ms) if ms is not None else "now"
    return admin(ctx.api, "resetOffsetByTime", group=group, topic=topic, timestamp=stamp, force=True)


@route("consumer/create", "POST", ["group", "cluster", "brokers", "retryQueueNums", "retryMaxTimes", "consumeEnable",
                                   "consumeBroadcastEnable", "consumeFromMinEnable"])
def consumer_create(ctx: Context, form: Form):
    """Create or update the group's subscription config on every master of the cluster, or of the chosen
    brokers (updateSubGroup)."""
    group = form.group()
    why = retry_group_error(group)
    if why is not None:
        raise BadRequest(f"group: {why}")
    values = dict(retryQueueNums=form.integer("retryQueueNums", 0, 64, 1),
                  retryMaxTimes=form.integer("retryMaxTimes", 0, 64, 16),
                  consumeEnable=form.flag("consumeEnable", True),
                  consumeBroadcastEnable=form.flag("consumeBroadcastEnable"),
                  consumeFromMinEnable=form.flag("consumeFromMinEnable"))
    return _on_cluster_or_brokers(ctx, form, "updateSubGroup", groupName=group, **values)


@route("consumer/delete", "POST", ["group", "cluster", "brokers", "removeOffset"])
def consumer_delete(ctx: Context, form: Form):
    """Delete the group's subscription config (and its retry and DLQ topics) from the cluster, or only its
    config from the chosen brokers (as ``mqadmin deleteSubGroup -b``)."""
    return _on_cluster_or_brokers(ctx, form, "deleteSubGroup", groupName=form.group(),
                                  removeOffset=form.flag("removeOffset"))


@route("consumer/running-info", fields=["group", "clientId", "jstack"])
def consumer_running_info(ctx: Context, form: Form):
    """What one online consumer reports about itself (GET_CONSUMER_RUNNING_INFO, relayed by a broker);
    ``jstack``: with its thread stacks (``jstack`` of the answer), as rocketmq-dashboard can ask."""
    group = form.group()
    return admin(ctx.api, "consumerStatus", consumerGroup=group, clientId=client_id_field(form),
                 jstack=form.flag("jstack"))


@route("acl", fields=["cluster"])
@defer.inlineCallbacks
def acl(ctx: Context, form: Form):
    """The ACL accounts (secret keys masked) and global white list of each master, and their file versions."""
    cluster_name = yield _cluster_field(ctx, form)
    accounts = yield admin(ctx.api, "getAclConfig", clusterName=cluster_name)
    versions = yield admin(ctx.api, "clusterAclConfigVersion", clusterName=cluster_name)
    return {"cluster": cluster_name, "brokers": accounts, "versions": versions}


def _acl_key(form: Form, name: str) -> str:
    value = form.text(name, 128, required=True)
    if len(value) < MIN_KEY_LENGTH or not _ACL_KEY.fullmatch(value):
        raise BadRequest(f"{name}: give {MIN_KEY_LENGTH} to 128 characters of A-Z a-z 0-9 _ . @ + / -")
    return value


def _acl_list(form: Form, name: str):
    """A ``res=PERM,res=PERM`` or ``10.1.*,10.2.*`` list: bounded, one line, items checked by the command."""
    value = form.text(name, 4096)
    if value is not None and any(c in value for c in "\r\n\t"):
        raise BadRequest(f"{name}: one line, items separated by commas")
    return value


@route("acl/account", "POST", ["cluster", "accessKey", "secretKey", "whiteRemoteAddress", "admin",
                               "defaultTopicPerm", "defaultGroupPerm", "topicPerms", "groupPerms"])
@defer.inlineCallbacks
def acl_account(ctx: Context, form: Form):
    """Create or update an account on every master of the cluster (updateAclConfig)."""
    values = dict(accessKey=_acl_key(form, "accessKey"), secretKey=_acl_key(form, "secretKey"),
                  whiteRemoteAddress=_acl_list(form, "whiteRemoteAddress"), admin=form.flag("admin"),
                  defaultTopicPerm=form.choice("defaultTopicPerm", PERM_WORDS, "DENY") if form.values.get(
                      "defaultTopicPerm") else None,
                  defaultGroupPerm=form.choice("defaultGroupPerm", PERM_WORDS, "DENY") if form.values.get(
                      "defaultGroupPerm") else None,
                  topicPerms=_acl_list(form, "topicPerms"), groupPerms=_acl_list(form, "groupPerms"))
    cluster_name = yield _cluster_field(ctx, form)
    result = yield admin(ctx.api, "updateAclConfig", clusterName=cluster_name, **values)
    return result


@route("acl/account/delete", "POST", ["cluster", "accessKey"])
@defer.inlineCallbacks
def acl_account_delete(ctx: Context, form: Form):
    access_key = _acl_key(form, "accessKey")
    cluster_name = yield _cluster_field(ctx, form)
    result = yield admin(ctx.api, "deleteAclConfig", clusterName=cluster_name, accessKey=access_key)
    return result


@route("acl/white-list", "POST", ["cluster", "addresses"])
@defer.inlineCallbacks
def acl_white_list(ctx: Context, form: Form):
    """Replace the global white list of every master's ACL file (updateGlobalWhiteAddr)."""
    addresses = _acl_list(form, "addresses") or ""
    cluster_name = yield _cluster_field(ctx, form)
    result = yield admin(ctx.api, "updateGlobalWhiteAddr", clusterName=cluster_name,
                         globalWhiteRemoteAddresses=addresses)
    return result


@route("producers", fields=["group", "topic"])
def producers(ctx: Context, form: Form):
    return admin(ctx.api, "producerConnection", producerGroup=form.group(), topic=form.topic())


# --------------------------------------------------------------------------------------------- messages


@route("messages/by-topic", fields=["topic", "begin", "end", "limit"])
@defer.inlineCallbacks
def messages_by_topic(ctx: Context, form: Form):
    topic = form.topic()
    begin, end = form.timestamp("begin"), form.timestamp("end")
    if begin is not None and end is not None and begin > end:
        raise BadRequest("begin: after end")
    limit = form.integer("limit", 1, ctx.config.max_messages, ctx.config.max_messages)
    found = yield admin(ctx.api, "consumeMessage", topic=topic, beginTimestamp=begin, endTimestamp=end,
                        MessageNumber=limit)
    found.sort(key=lambda m: m["storeTimestamp"], reverse=True)
    return short_bodies(found)


@route("messages/by-key", fields=["topic", "key"])
@defer.inlineCallbacks
def messages_by_key(ctx: Context, form: Form):
    topic = form.topic()
    key = form.text("key", 255, required=True)
    try:
        found = yield admin(ctx.api, "queryMsgByKey", topic=topic, msgKey=key)
    except AdminError as e:
        if isinstance(e, ResponseError):
            raise
        return []
    return found[: ctx.config.max_messages]


@route("messages/by-id", fields=["id", "topic"])
@defer.inlineCallbacks
def messages_by_id(ctx: Context, form: Form):
    """One message by its offset id (which names the broker that stores it: only a broker the NameServer
    lists is asked) or, with a topic, by the client's unique id."""
    msg_id = form.text("id", 64, required=True)
    if not _HEX_ID.fullmatch(msg_id):
        raise BadRequest("id: not a message id (32 or 56 hexadecimal characters)")
    topic = form.topic() if form.values.get("topic") else None
    try:
        (host, port), offset = decode_offset_msg_id(msg_id)
        addr = yield known_broker(ctx.api, f"{host}:{port}")
    except (ValueError, BadRequest):
        addr = None
    if addr is not None:
        try:
            return (yield admin(ctx.api, "queryMsgById", msgId=msg_id))
        except ResponseError:
            if topic is None:
                raise
    if topic is None:
        raise BadRequest("topic: needed to find a message by its unique (client) id")
    try:
        return (yield admin(ctx.api, "queryMsgByUniqueKey", msgId=msg_id, topic=topic))
    except AdminError as e:
        if isinstance(e, ResponseError):
            raise
        raise NotFound(str(e)) from None


@route("messages/trace", fields=["id", "traceTopic"])
@defer.inlineCallbacks
def message_trace(ctx: Context, form: Form):
    """The trace of one message id from the trace topic (what clients with tracing on wrote there)."""
    msg_id = form.text("id", 64, required=True)
    if not _HEX_ID.fullmatch(msg_id):
        raise BadRequest("id: not a message id (32 or 56 hexadecimal characters)")
    topic = form.topic("traceTopic") if form.values.get("traceTopic") else TRACE_TOPIC
    route_data = yield ctx.api.topic_route(topic)
    messages: list = []
    for _, addr in sorted(route_masters(route_data).items()):
        messages.extend((yield ctx.api.query_message(addr, topic, msg_id, max_num=64)))
    view = trace_page(msg_id, trace_views(msg_id, messages))
    view.update(traceTopic=topic, traceMessages=len(messages))
    return view
