"""``KVConfigManager``: the NameServer's namespaced key-value settings, kept in a JSON file."""

from __future__ import annotations

from typing import Dict, Optional

from twisted.logger import Logger

from mq.common import fastjson
from mq.common.configfile import read_json_file, write_atomically

log = Logger()


class KVConfigManager:
    """``{"configTable": {namespace: {key: value}}}``, saved after every change and loaded at start."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.table: Dict[str, Dict[str, str]] = {}
        #: Counts changes (route answers include the ORDER_TOPIC_CONFIG namespace, and are cached between them).
        self.version = 0

    def load(self) -> None:
        if not self.path:
            return
        data = read_json_file(self.path)
        if data is None:
            return
        table = data.get("configTable") if isinstance(data, dict) else None
        if not isinstance(table, dict):
            log.warn("ignoring {path}: no configTable object", path=self.path)
            return
        self.table = {
            str(ns): {str(k): str(v) for k, v in (kv or {}).items()}
            for ns, kv in table.items()
            if isinstance(kv, dict)
        }
        self.version += 1
        log.info("loaded KV config from {path}: {n} namespaces", path=self.path, n=len(self.table))

    def persist(self) -> None:
        if self.path:
            write_atomically(self.path, fastjson.dumps({"configTable": self.table}))

    def put(self, namespace: str, key: str, value: str) -> None:
        self.table.setdefault(namespace, {})[key] = value
        self.version += 1
        log.info("KV config put {ns} {key}={value}", ns=namespace, key=key, value=value)
        self.persist()

    def get(self, namespace: str, key: str) -> Optional[str]:
        return self.table.get(namespace, {}).get(key)

    def delete(self, namespace: str, key: str) -> None:
        kv = self.table.get(namespace)
        if kv is not None and kv.pop(key, None) is not None:
            if not kv:
                del self.table[namespace]
            self.version += 1
            log.info("KV config delete {ns} {key}", ns=namespace, key=key)
            self.persist()

    def namespace(self, namespace: str) -> Optional[Dict[str, str]]:
        kv = self.table.get(namespace)
        return dict(kv) if kv else None
