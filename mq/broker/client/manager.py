"""Who is connected: producer and consumer groups, their channels, and the consumers' subscriptions.

A channel is the ``RemotingProtocol`` of a client connection. Clients re-announce themselves every 30 s
with HEART_BEAT; a channel silent for ``channelExpiredTimeout`` (120 s) is dropped and closed by the
housekeeping scan, and a closed connection is dropped at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attr
from twisted.logger import Logger

from mq.common.heartbeat import ConsumerData, SubscriptionData
from mq.remoting.codes import LanguageCode

log = Logger()


@attr.s(slots=True, eq=False)
class ClientChannelInfo:
    channel: object = attr.ib()
    client_id: str = attr.ib()
    language: int = attr.ib(default=LanguageCode.JAVA)
    version: int = attr.ib(default=0)
    last_update: int = attr.ib(default=0)

    @property
    def client_addr(self) -> str:
        return getattr(self.channel, "peer", "?")

    @property
    def language_name(self) -> str:
        try:
            return LanguageCode(self.language).name
        except ValueError:
            return "OTHER"

    def to_json(self) -> dict:
        """A ``Connection`` of the admin bodies."""
        return {"clientAddr": self.client_addr, "clientId": self.client_id, "language": self.language_name,
                "version": self.version}


@attr.s(slots=True, eq=False)
class ConsumerGroupInfo:
    group_name: str = attr.ib()
    consume_type: str = attr.ib(default="CONSUME_PASSIVELY")
    message_model: str = attr.ib(default="CLUSTERING")
    consume_from_where: str = attr.ib(default="CONSUME_FROM_LAST_OFFSET")
    channels: dict[object, ClientChannelInfo] = attr.ib(factory=dict)
    subscriptions: dict[str, SubscriptionData] = attr.ib(factory=dict)
    last_update: int = attr.ib(default=0)

    def client_ids(self) -> list[str]:
        return [info.client_id for info in self.channels.values()]

    def find_channel(self, client_id: str) -> ClientChannelInfo | None:
        for info in self.channels.values():
            if info.client_id == client_id:
                return info
        return None

    def update_channel(self, info: ClientChannelInfo, data: ConsumerData, now: int) -> bool:
        """Record the channel's heartbeat; True if it is a new member of the group."""
        self.consume_type = data.consume_type
        self.message_model = data.message_model
        self.consume_from_where = data.consume_from_where
        self.last_update = now
        old = self.channels.get(info.channel)
        if old is None:
            self.channels[info.channel] = info
            return True
        old.last_update = now
        old.client_id = info.client_id
        return False

    def update_subscriptions(self, subs: Iterable[SubscriptionData]) -> bool:
        """Take the group's subscriptions; True if a topic was added or removed (a rebalance is due)."""
        changed = False
        seen = set()
        for sub in subs:
            seen.add(sub.topic)
            old = self.subscriptions.get(sub.topic)
            if old is None:
                self.subscriptions[sub.topic] = sub
                changed = True
            elif sub.sub_version > old.sub_version or sub.sub_string != old.sub_string:
                self.subscriptions[sub.topic] = sub
        for topic in [t for t in self.subscriptions if t not in seen]:
            del self.subscriptions[topic]
            changed = True
        return changed

    def to_connection_json(self) -> dict:
        """The ``ConsumerConnection`` body of GET_CONSUMER_CONNECTION_LIST."""
        return {
            "connectionSet": [i.to_json() for i in self.channels.values()],
            "consumeFromWhere": self.consume_from_where,
            "consumeType": self.consume_type,
            "messageModel": self.message_model,
            "subscriptionTable": dict(self.subscriptions),
        }


class _GroupsOfChannel:
    """channel → the groups it is registered in: a closed connection is forgotten without a look at every group."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table: dict[object, set[str]] = {}

    def add(self, channel: object, group: str) -> None:
        groups = self.table.get(channel)
        if groups is None:
            groups = self.table[channel] = set()
        groups.add(group)

    def discard(self, channel: object, group: str) -> None:
        groups = self.table.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.table[channel]

    def of(self, channel: object) -> list[str]:
        return list(self.table.get(channel, ()))


def _drop_expired(kind: str, groups: dict[str, dict[object, ClientChannelInfo]], deadline: int,
                  unregister: Callable[[str, object], None]) -> list[object]:
    """Unregister every channel whose last heartbeat is before ``deadline``; returns those channels."""
    dead = []
    for group, channels in groups.items():
        for channel, client in list(channels.items()):
            if client.last_update < deadline:
                log.warn("{kind} {cid} of {group} sent no heartbeat in time: dropped", kind=kind,
                         cid=client.client_id, group=group)
                unregister(group, channel)
                dead.append(channel)
    return dead


class ConsumerManager:
    """Consumer groups. ``on_group_changed(group, channels)`` runs when a group's members or topics change."""

    def __init__(self, now_ms: Callable[[], int], channel_expired_timeout: int = 120_000) -> None:
        self.now_ms = now_ms
        self.timeout = channel_expired_timeout
        self.table: dict[str, ConsumerGroupInfo] = {}
        self.on_group_changed: Callable[[str, list[ClientChannelInfo]], None] | None = None
        self.groups_of = _GroupsOfChannel()

    def get(self, group: str) -> ConsumerGroupInfo | None:
        return self.table.get(group)

    def find_subscription(self, group: str, topic: str) -> SubscriptionData | None:
        info = self.table.get(group)
        return None if info is None else info.subscriptions.get(topic)

    def register(self, data: ConsumerData, client: ClientChannelInfo, notify: bool = True) -> bool:
        now = self.now_ms()
        client.last_update = now
        info = self.table.get(data.group_name)
        if info is None:
            info = self.table[data.group_name] = ConsumerGroupInfo(data.group_name)
        new_member = info.update_channel(client, data, now)
        new_topics = info.update_subscriptions(data.subscription_data_set)
        if new_member:
            self.groups_of.add(client.channel, data.group_name)
            log.info("consumer {cid} joined group {group} from {addr}", cid=client.client_id,
                     group=data.group_name, addr=client.client_addr)
        if (new_member or new_topics) and notify:
            self._notify(info)
        return new_member or new_topics

    def unregister(self, group: str, channel: object, notify: bool = True, quiet: bool = False) -> None:
        info = self.table.get(group)
        if info is None:
            return
        removed = info.channels.pop(channel, None)
        if removed is not None:
            self.groups_of.discard(channel, group)
            if not quiet:
                log.info("consumer {cid} left group {group}", cid=removed.client_id, group=group)
        if not info.channels:
            del self.table[group]
        elif removed is not None and notify:
            self._notify(info)

    def channel_closed(self, channel: object) -> None:
        groups = self.groups_of.of(channel)
        if not groups:
            return
        for group in groups:
            self.unregister(group, channel, quiet=True)
        # one line per connection, not per group: a client of many groups closes in one step
        more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
        log.info("consumer at {addr} closed its connection: left {groups}{more}",
                 addr=getattr(channel, "peer", "?"), groups=", ".join(sorted(groups)[:3]), more=more)

    def scan_expired(self) -> list[object]:
        """Drop channels without a heartbeat for the timeout; returns them (the caller closes them)."""
        groups = {group: info.channels for group, info in self.table.items()}
        return _drop_expired("consumer", groups, self.now_ms() - self.timeout, self.unregister)

    def groups_of_topic(self, topic: str) -> list[str]:
        return [g for g, info in self.table.items() if topic in info.subscriptions]

    def _notify(self, info: ConsumerGroupInfo) -> None:
        if self.on_group_changed is not None:
            self.on_group_changed(info.group_name, list(info.channels.values()))


class ProducerManager:
    def __init__(self, now_ms: Callable[[], int], channel_expired_timeout: int = 120_000) -> None:
        self.now_ms = now_ms
        self.timeout = channel_expired_timeout
        self.table: dict[str, dict[object, ClientChannelInfo]] = {}
        self.groups_of = _GroupsOfChannel()

    def register(self, group: str, client: ClientChannelInfo) -> None:
        client.last_update = self.now_ms()
        channels = self.table.setdefault(group, {})
        old = channels.get(client.channel)
        if old is None:
            channels[client.channel] = client
            self.groups_of.add(client.channel, group)
        else:
            old.last_update = client.last_update

    def unregister(self, group: str, channel: object) -> None:
        channels = self.table.get(group)
        if channels is not None:
            if channels.pop(channel, None) is not None:
                self.groups_of.discard(channel, group)
            if not channels:
                del self.table[group]

    def channel_closed(self, channel: object) -> None:
        for group in self.groups_of.of(channel):
            self.unregister(group, channel)

    def scan_expired(self) -> list[object]:
        return _drop_expired("producer", dict(self.table), self.now_ms() - self.timeout, self.unregister)

    def connections(self, group: str) -> list[ClientChannelInfo]:
        return list((self.table.get(group) or {}).values())

    def find_channel(self, client_id: str) -> ClientChannelInfo | None:
        for channels in self.table.values():
            for info in channels.values():
                if info.client_id == client_id:
                    return info
        return None
