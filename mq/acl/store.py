"""Where the ACL files are, loading them into one table of accounts, and saving changes back.

As RocketMQ 4.9: ``$ROCKETMQ_HOME/conf/plain_acl.yml`` (or the file the ``aclFile`` key names) and then
every ``*.yml``/``*.yaml`` under ``$ROCKETMQ_HOME/conf/acl/``; an accessKey defined twice keeps its first
definition, with a warning. A load either takes every file or changes nothing, so a bad edit at run time
leaves the accounts that were working in place.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import attr
import yaml
from twisted.logger import Logger

from mq.acl.accounts import Account, AclConfigError, AclFile, CompiledAccount
from mq.acl.ip_pattern import Strategy
from mq.common.configfile import write_atomically

log = Logger()

DEFAULT_FILE = os.path.join("conf", "plain_acl.yml")
EXTRA_DIR = os.path.join("conf", "acl")
TOOLS_FILE = os.path.join("conf", "tools.yml")
SUFFIXES = (".yml", ".yaml")
#: Files larger than this are refused (an ACL file is a few KiB; this bounds what a reload reads).
MAX_FILE_SIZE = 8 * 1024 * 1024


def acl_paths(rocketmq_home: str = "", acl_file: str = "") -> Tuple[str, Optional[str]]:
    """The main file and the extra directory (None without a home).

    ``acl_file`` may be absolute or relative to ``rocketmq_home``. Raises AclConfigError when neither is set.
    """
    home = os.path.expanduser(rocketmq_home) if rocketmq_home else ""
    if acl_file:
        main = os.path.expanduser(acl_file)
        if not os.path.isabs(main):
            main = os.path.join(home or os.getcwd(), main)
    elif home:
        main = os.path.join(home, DEFAULT_FILE)
    else:
        raise AclConfigError("ACL needs rocketmqHome (or ROCKETMQ_HOME) or aclFile to find plain_acl.yml")
    return os.path.abspath(main), (os.path.abspath(os.path.join(home, EXTRA_DIR)) if home else None)


def list_files(main: str, extra_dir: Optional[str]) -> List[str]:
    """The main file first, then the extra directory's YAML files in sorted order (tools.yml left out)."""
    files = [main]
    if extra_dir and os.path.isdir(extra_dir):
        found = []
        for root, dirs, names in os.walk(extra_dir):
            dirs.sort()
            found.extend(os.path.join(root, n) for n in names if n.endswith(SUFFIXES))
        tools = os.path.join(os.path.dirname(extra_dir), os.path.basename(TOOLS_FILE))
        files.extend(p for p in sorted(found) if p not in (main, tools))
    return files


def read_file(path: str, empty_ok: bool = True) -> Tuple[AclFile, bytes]:
    """One file and its raw bytes (a missing file reads as empty); raises AclConfigError naming the file.

    ``empty_ok=False`` (a reload) refuses a file that exists but holds nothing: an editor that truncates and
    then writes leaves one for a moment, and taking it would remove its accounts until the next look."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        return AclFile(path), b""
    except OSError as e:
        raise AclConfigError(f"{path}: {e.strerror}") from None
    try:
        if len(raw) > MAX_FILE_SIZE:
            raise AclConfigError(f"larger than {MAX_FILE_SIZE} bytes")
        if not empty_ok and not raw.strip():
            raise AclConfigError("empty (still being written?); to mean no accounts, write 'accounts: []'")
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise AclConfigError(f"not YAML: {' '.join(str(e).split())}") from None
        acl = AclFile.from_document(path, data)
        acl.white_strategies()
        for account in acl.accounts:
            account.compile()
        return acl, raw
    except AclConfigError as e:
        raise AclConfigError(f"{path}: {e}") from None


def fingerprint(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()  # noqa: S324 - change detection, as RocketMQ's watcher, not security


@attr.s(slots=True)
class AclTable:
    """What the access check reads: the merged global white list and the accounts by accessKey."""

    global_white: Tuple[Strategy, ...] = attr.ib(default=())
    accounts: Dict[str, CompiledAccount] = attr.ib(factory=dict)
    #: accessKey → the file that defines it.
    owners: Dict[str, str] = attr.ib(factory=dict)


class AclStore:
    """The loaded ACL files (in load order) and the table built from them."""

    def __init__(self, main: str, extra_dir: Optional[str] = None,
                 now_ms: Optional[Callable[[], int]] = None) -> None:
        self.main = main
        self.extra_dir = extra_dir
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.files: Dict[str, AclFile] = {}
        #: path → MD5 of the bytes last loaded or saved (the watcher compares with it).
        self.digests: Dict[str, str] = {}
        self.table = AclTable()

    # -- loading ------------------------------------------------------------------------------------

    def load(self, empty_ok: bool = True) -> AclTable:
        """Read every file and swap the table in; raises AclConfigError (and keeps the old table) on a bad one
        (``empty_ok``: see ``read_file``)."""
        files: Dict[str, AclFile] = {}
        digests: Dict[str, str] = {}
        for path in list_files(self.main, self.extra_dir):
            acl, raw = read_file(path, empty_ok)
            files[path] = acl
            digests[path] = fingerprint(raw)
        self.table = self._build(files.values())
        self.files, self.digests = files, digests
        return self.table

    def reload(self) -> bool:
        """``load`` for a running broker: a bad file is logged in one line and the previous accounts stay."""
        try:
            self.load(empty_ok=False)
        except AclConfigError as e:
            log.error("ACL files not reloaded, the previous accounts stay in force: {error}", error=str(e))
            return False
        log.info("ACL files reloaded: {n} accounts from {files}", n=len(self.table.accounts),
                 files=", ".join(self.files))
        return True

    @staticmethod
    def _build(files: Iterable[AclFile]) -> AclTable:
        table = AclTable()
        white: List[Strategy] = []
        for acl in files:
            white.extend(acl.white_strategies())
            for account in acl.accounts:
                owner = table.owners.get(account.access_key)
                if owner is not None:
                    log.warn("ACL accessKey {ak} of {path} is already defined in {owner}; the first one is used",
                             ak=account.access_key, path=acl.path, owner=owner)
                    continue
                table.accounts[account.access_key] = account.compile()
                table.owners[account.access_key] = acl.path
        table.global_white = tuple(white)
        return table

    # -- queries ------------------------------------------------------------------------------------

    @property
    def default_file(self) -> AclFile:
        """The main file (empty if it does not exist yet)."""
        acl = self.files.get(self.main)
        if acl is None:
            acl = self.files[self.main] = AclFile(self.main)
        return acl

    def account(self, access_key: str) -> Optional[Account]:
        path = self.table.owners.get(access_key)
        return self.files[path].account(access_key) if path else None

    def versions(self) -> Dict[str, dict]:
        """path → data version as JSON, for every loaded file (GET_BROKER_CLUSTER_ACL_INFO)."""
        return {path: acl.data_version.to_json() for path, acl in self.files.items()}

    # -- changes (the ACL admin requests) -----------------------------------------------------------

    def save(self, acl: AclFile) -> None:
        """Bump ``acl``'s data version, write it atomically and rebuild the table.

        Raises AclConfigError (nothing saved, nothing changed) when the result would not load, over
        MAX_FILE_SIZE included (the broker would then refuse to restart), OSError when it cannot be written.
        """
        files = dict(self.files)
        files[acl.path] = acl
        table = self._build(files.values())
        acl.data_version.next_version(self.now_ms())
        text = yaml.safe_dump(acl.to_document(), sort_keys=False, default_flow_style=False, allow_unicode=True)
        raw = text.encode("utf-8")
        if len(raw) > MAX_FILE_SIZE:
            raise AclConfigError(f"{acl.path} would be {len(raw)} bytes, larger than the {MAX_FILE_SIZE} a load reads")
        write_atomically(acl.path, text)
        self.files, self.table = files, table
        self.digests[acl.path] = fingerprint(raw)

    def _copy(self, acl: AclFile) -> AclFile:
        return AclFile(acl.path, list(acl.global_white_remote_addresses), list(acl.accounts),
                       attr.evolve(acl.data_version))

    def update_account(self, account: Account) -> AclFile:
        """Create or replace an account, in the file that defines it, else the main file; returns that file."""
        account.compile()
        path = self.table.owners.get(account.access_key, self.main)
        acl = self._copy(self.files.get(path) or AclFile(path))
        acl.accounts = [account if a.access_key == account.access_key else a for a in acl.accounts]
        if acl.account(account.access_key) is None:
            acl.accounts.append(account)
        self.save(acl)
        return acl

    def delete_account(self, access_key: str) -> AclFile:
        """Remove an account from the file that defines it; raises AclConfigError when there is none."""
        path = self.table.owners.get(access_key)
        if path is None:
            raise AclConfigError(f"no account with accessKey {access_key!r}")
        acl = self._copy(self.files[path])
        acl.accounts = [a for a in acl.accounts if a.access_key != access_key]
        self.save(acl)
        return acl

    def update_global_white(self, addresses: Iterable[str], path: Optional[str] = None) -> AclFile:
        """Replace the global white list of ``path`` (a loaded file; default the main file)."""
        path = os.path.abspath(path) if path else self.main
        if path not in self.files and path != self.main:
            raise AclConfigError(f"{path} is not one of the ACL files")
        acl = self._copy(self.files.get(path) or AclFile(path))
        acl.global_white_remote_addresses = [a.strip() for a in addresses if a.strip()]
        acl.white_strategies()
        self.save(acl)
        return acl
