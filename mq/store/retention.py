"""Retention: delete CommitLog files past ``fileReservedTime`` and the queue and index files they obsolete.

Runs every ``cleanResourceInterval``. Expired files go at the ``deleteWhen`` hour, or at any hour once disk use
passes ``diskMaxUsedSpaceRatio``; past ``diskSpaceCleanForciblyRatio`` the oldest file goes even if young, one
per run (puts are refused past ``diskSpaceWarningLevelRatio``: diskspace.py). Deletion waits for no fsync to
be running.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

if TYPE_CHECKING:  # pragma: no cover
    from mq.store.store import MessageStore

log = Logger()


class Retention:
    def __init__(self, store: "MessageStore") -> None:
        self.store = store
        self.deleted_files = 0

    def _is_delete_hour(self, now_ms: int) -> bool:
        hour = time.localtime(now_ms / 1000).tm_hour
        return any(h.strip().isdigit() and int(h) == hour for h in self.store.config.delete_when.split(";"))

    def run(self) -> Any:
        store = self.store
        if not store.running:
            return None
        cfg = store.config
        percent = store.space.refresh() * 100
        now = store.now_ms()
        forcibly = percent > cfg.disk_space_clean_forcibly_ratio
        if not (forcibly or percent > cfg.disk_max_used_space_ratio or self._is_delete_hour(now)):
            return None
        return store.flusher.when_idle().addCallback(lambda _: self.delete_files(now, forcibly))

    def run_manually(self) -> defer.Deferred:
        """Delete the expired files now, whatever the hour (``mqadmin deleteExpiredCommitLog``); fires with the
        number of CommitLog files deleted."""
        if not self.store.running:
            return defer.succeed(0)
        now = self.store.now_ms()
        return self.store.flusher.when_idle().addCallback(lambda _: self.delete_files(now))

    def delete_files(self, now_ms: int, forcibly: bool = False) -> int:
        """Delete expired CommitLog files (never the newest), then obsolete queue and index files."""
        store = self.store
        cl = store.commitlog
        cfg = store.config
        expire_ms = cfg.file_reserved_time * 3600 * 1000
        deleted = 0
        files = cl.files.files
        while len(files) > 1 and deleted < cfg.delete_commit_log_files_max:
            f = files[0]
            expired = now_ms - f.mtime() * 1000 >= expire_ms
            if not expired and not (forcibly and deleted == 0):
                break
            log.info("deleting CommitLog file {path} ({why})", path=f.path, why="expired" if expired else "disk full")
            cl.delete_first_file()
            deleted += 1
        if deleted:
            self.deleted_files += deleted
            self.clean_logic_files(cl.min_offset)
        return deleted

    def clean_logic_files(self, min_phy: int) -> None:
        """Delete queue and index files that only point below ``min_phy``; move queue min offsets up."""
        store = self.store
        for cq in store.queues.all():
            cq.delete_expired_files(min_phy)
            cq.correct_min_offset(min_phy)
        if store.index is not None:
            store.index.delete_expired(min_phy)
