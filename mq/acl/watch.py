"""Hot reload of the ACL files: RocketMQ's ``AclFileWatchService`` (a look every 5 s, MD5 + modification time).

A file whose modification time or size moved is hashed; a new hash, or a file added or removed, reloads every
file (``AclStore.reload`` keeps the previous accounts when the new content is bad).
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Set, Tuple

from twisted.internet import task
from twisted.logger import Logger

from mq.acl.store import AclStore, fingerprint, list_files

log = Logger()

#: Seconds between two looks, as RocketMQ's watcher.
WATCH_INTERVAL = 5.0

Stat = Optional[Tuple[int, int]]


def _stat(path: str) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _digest(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return fingerprint(f.read())
    except FileNotFoundError:
        return fingerprint(b"")
    except OSError:
        return ""


class AclWatcher:
    """Polls the files of an ``AclStore`` on ``clock`` and reloads it when one changes."""

    def __init__(self, store: AclStore, clock, interval: float = WATCH_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self.loop = task.LoopingCall(self.check)
        self.loop.clock = clock
        self.known: Set[str] = set()
        self.stats: Dict[str, Stat] = {}
        #: path → MD5 of the content last looked at (a bad file is tried once, not every 5 s).
        self.seen: Dict[str, str] = {}
        self.reloads = 0

    def start(self) -> None:
        self.known = set(self.store.files)
        self.stats = {p: _stat(p) for p in self.known}
        self.seen = dict(self.store.digests)
        self.loop.start(self.interval, now=False).addErrback(
            lambda f: log.failure("the ACL file watcher stopped", f))

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    def changed(self) -> bool:
        """Whether a file was added, removed, or holds bytes neither loaded, saved nor already tried."""
        paths = list_files(self.store.main, self.store.extra_dir)
        dirty = set(paths) != self.known
        self.known = set(paths)
        for path in paths:
            stat = _stat(path)
            if stat != self.stats.get(path):
                self.stats[path] = stat
                digest = _digest(path)
                if digest not in (self.seen.get(path), self.store.digests.get(path)):
                    dirty = True
                self.seen[path] = digest
        return dirty

    def check(self) -> None:
        try:
            if self.changed():
                self.reloads += 1
                self.store.reload()
        except Exception:  # noqa: BLE001 - keep watching; the previous accounts stay
            log.failure("checking the ACL files")
