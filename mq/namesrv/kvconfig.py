"""``KVConfigManager``: the NameServer's namespaced key-value settings, kept in a JSON file.

RocketMQ's NameServer bounds nothing here. Its real uses are short (ORDER_TOPIC_CONFIG: topic →
``broker-a:8;broker-b:8``), and every put rewrites and fsyncs the whole file on the reactor thread, so the
table is bounded: generous for those uses, finite for a peer that sends megabytes.
"""

from __future__ import annotations

from typing import Dict, Optional

from twisted.logger import Logger

from mq.common import fastjson
from mq.common.config import shown
from mq.common.configfile import FileTooLarge, read_json_file, write_atomically

log = Logger()

#: Longest namespace and key, in characters (a group name's bound; keys are topics, addresses...).
MAX_NAMESPACE_LENGTH = 255
MAX_KEY_LENGTH = 255
#: Longest value, in UTF-8 bytes.
MAX_VALUE_BYTES = 64 * 1024
MAX_KEYS_PER_NAMESPACE = 10_000
MAX_NAMESPACES = 100
#: Largest kvConfig.json a put writes and a start reads (encoding it takes about 50 ms).
MAX_FILE_SIZE = 8 * 1024 * 1024


class KVConfigError(ValueError):
    """A put beyond a bound (nothing changed), or a file too large to load; the text names the bound."""


def _encode(table: Dict[str, Dict[str, str]]) -> str:
    return fastjson.dumps_string_keyed({"configTable": table})  # ASCII: its length is the file's size


class KVConfigManager:
    """``{"configTable": {namespace: {key: value}}}``, saved after every change and loaded at start."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.table: Dict[str, Dict[str, str]] = {}
        #: Counts changes (route answers include the ORDER_TOPIC_CONFIG namespace, and are cached between them).
        self.version = 0
        #: Why the file was not loaded: nothing is written over it then, and puts are refused.
        self.load_error: Optional[str] = None

    def load(self) -> None:
        """Read the file; raises KVConfigError, and leaves the file alone, when it is over MAX_FILE_SIZE."""
        if not self.path:
            return
        try:
            data = read_json_file(self.path, MAX_FILE_SIZE)
        except FileTooLarge as e:
            self.load_error = f"{e}: trim it or move it away"
            raise KVConfigError(self.load_error) from None
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
        if self.path and self.load_error is None:
            write_atomically(self.path, _encode(self.table))

    def put_error(self, namespace: str, key: str, value: str) -> Optional[str]:
        """Why this put would pass a bound, or None (the file size is checked by ``put``)."""
        if self.load_error is not None:
            return self.load_error
        if len(namespace) > MAX_NAMESPACE_LENGTH:
            return f"the namespace {shown(namespace)} is longer than {MAX_NAMESPACE_LENGTH} characters"
        if len(key) > MAX_KEY_LENGTH:
            return f"the key {shown(key)} is longer than {MAX_KEY_LENGTH} characters"
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_VALUE_BYTES:
            return f"the value is {size} bytes, more than {MAX_VALUE_BYTES}"
        kv = self.table.get(namespace)
        if kv is None and len(self.table) >= MAX_NAMESPACES:
            return f"there are already {MAX_NAMESPACES} namespaces, the most there may be"
        if kv is not None and key not in kv and len(kv) >= MAX_KEYS_PER_NAMESPACE:
            return f"namespace {shown(namespace)} already has {MAX_KEYS_PER_NAMESPACE} keys, the most it may have"
        return None

    def put(self, namespace: str, key: str, value: str) -> None:
        """Store and save ``value``. Raises KVConfigError beyond a bound, OSError when the file cannot be
        written; either way the table and the file are as they were."""
        why = self.put_error(namespace, key, value)
        if why is not None:
            raise KVConfigError(why)
        table = dict(self.table)
        table[namespace] = {**table.get(namespace, {}), key: value}
        text = _encode(table)
        if len(text) > MAX_FILE_SIZE:
            raise KVConfigError(f"the KV config file would be {len(text)} bytes, more than {MAX_FILE_SIZE}")
        if self.path:
            write_atomically(self.path, text)
        self.table = table
        self.version += 1
        log.info("KV config put {ns} {key} ({n} characters)", ns=namespace, key=key, n=len(value))

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
