"""The body of REGISTER_BROKER: a broker's topic configs, their data version and its filter servers.

Plain brokers send it as JSON (``RegisterBrokerBody``); with ``compressed=true`` it is a zlib stream of the
binary layout ``COMPRESSED_REGISTER_BODY`` (wire reference §3.20), in which topicSysFlag and order are lost.
Requests older than V3_0_11 carry only the ``topicConfigSerializeWrapper`` JSON.
"""

from __future__ import annotations

import zlib
from typing import Dict, List

import attr
import construct as c

from mq.common import fastjson
from mq.common.compression import inflate
from mq.common.route import DataVersion, TopicConfig

#: A compressed registration inflates to no more than an uncompressed one may be long (the remoting layer's
#: largest frame): beyond, it is refused before it is inflated further.
MAX_INFLATED_REGISTER_BODY = 16 * 1024 * 1024

COMPRESSED_REGISTER_BODY = c.Struct(
    "data_version" / c.PascalString(c.Int32sb, "utf8"),
    "topics" / c.PrefixedArray(c.Int32sb, c.PascalString(c.Int32sb, "utf8")),
    "filter_server_list" / c.PascalString(c.Int32sb, "utf8"),
)


class RegisterBodyError(ValueError):
    """A REGISTER_BROKER body that does not decode."""


@attr.s(slots=True)
class RegisterBrokerBody:
    data_version: DataVersion = attr.ib(factory=DataVersion)
    topic_config_table: Dict[str, TopicConfig] = attr.ib(factory=dict)
    filter_server_list: List[str] = attr.ib(factory=list)

    def wrapper_json(self) -> dict:
        return {
            "dataVersion": self.data_version,
            "topicConfigTable": {name: tc for name, tc in self.topic_config_table.items()},
        }

    def encode(self, compressed: bool = False) -> bytes:
        if not compressed:
            return fastjson.dumps_bytes(
                {"filterServerList": self.filter_server_list, "topicConfigSerializeWrapper": self.wrapper_json()}
            )
        raw = COMPRESSED_REGISTER_BODY.build(
            {
                "data_version": fastjson.dumps(self.data_version),
                "topics": [
                    f"{tc.topic_name} {tc.read_queue_nums} {tc.write_queue_nums} {tc.perm} {tc.topic_filter_type}"
                    for tc in self.topic_config_table.values()
                ],
                "filter_server_list": fastjson.dumps(self.filter_server_list),
            }
        )
        return zlib.compress(raw, 9)

    @classmethod
    def decode(cls, body: bytes, compressed: bool = False, with_filter_servers: bool = True) -> "RegisterBrokerBody":
        """Parse a body; ``with_filter_servers=False`` for requests older than V3_0_11 (a bare wrapper)."""
        try:
            if compressed:
                return cls._decode_compressed(inflate(body, MAX_INFLATED_REGISTER_BODY))
            data = fastjson.loads(body) if body else {}
            if not isinstance(data, dict):
                raise RegisterBodyError("register body is not a JSON object")
            wrapper = data.get("topicConfigSerializeWrapper") if with_filter_servers else data
            wrapper = wrapper or {}
            table = {}
            for name, tc in (wrapper.get("topicConfigTable") or {}).items():
                tc = dict(tc)
                tc.setdefault("topicName", name)
                table[str(name)] = TopicConfig.from_json(tc)
            return cls(
                DataVersion.from_json(wrapper.get("dataVersion")),
                table,
                [str(s) for s in (data.get("filterServerList") or [])] if with_filter_servers else [],
            )
        except RegisterBodyError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, zlib.error, c.ConstructError) as e:
            raise RegisterBodyError(f"register body does not decode: {e}") from None

    @classmethod
    def _decode_compressed(cls, raw: bytes) -> "RegisterBrokerBody":
        parsed = COMPRESSED_REGISTER_BODY.parse(raw)
        table = {}
        for line in parsed.topics:
            parts = line.split(" ")
            if len(parts) < 5:
                raise RegisterBodyError(f"compressed topic entry {line!r} has {len(parts)} fields, not 5")
            name, read, write, perm, filter_type = parts[:5]
            table[name] = TopicConfig(name, int(read), int(write), int(perm), filter_type)
        return cls(
            DataVersion.from_json(fastjson.loads(parsed.data_version)),
            table,
            [str(s) for s in fastjson.loads(parsed.filter_server_list or "[]")],
        )
