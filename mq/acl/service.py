"""ACL on a broker: the loaded files, the check the dispatchers call, and the watcher that reloads them."""

from __future__ import annotations

from twisted.application import service
from twisted.logger import Logger

from mq.acl.store import AclStore, acl_paths
from mq.acl.validator import AccessValidator
from mq.acl.watch import WATCH_INTERVAL, AclWatcher

log = Logger()


class AclService(service.Service):
    """Loads the ACL files when made (a bad file raises AclConfigError: the broker does not start) and
    watches them while running."""

    def __init__(self, rocketmq_home: str, acl_file: str, clock, interval: float = WATCH_INTERVAL) -> None:
        main, extra_dir = acl_paths(rocketmq_home, acl_file)
        self.store = AclStore(main, extra_dir, now_ms=lambda: int(clock.seconds() * 1000))
        self.store.load()
        #: What ``RequestDispatcher.access_check`` calls.
        self.validator = AccessValidator(self.store)
        self.watcher = AclWatcher(self.store, clock, interval)

    def startService(self) -> None:
        super().startService()
        self.watcher.start()
        table = self.store.table
        log.info("ACL on: {n} accounts, {w} global white patterns, from {files}", n=len(table.accounts),
                 w=len(table.global_white), files=", ".join(self.store.files))
        if not table.accounts and not table.global_white:
            log.warn("ACL is on but {main} grants nothing: every request will be refused", main=self.store.main)

    def stopService(self):
        self.watcher.stop()
        return super().stopService()
