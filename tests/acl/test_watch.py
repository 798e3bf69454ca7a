"""Hot reload of the ACL files, driven by task.Clock: every 5 s, MD5 + modification time, added/removed files."""

from __future__ import annotations

import os

from twisted.internet import task

from mq.acl.accounts import Account
from mq.acl.store import AclStore, acl_paths
from mq.acl.watch import AclWatcher

ONE = "accounts:\n  - {{accessKey: {ak}, secretKey: secretKey1}}\n"


def write(path, text, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def setup(tmp_path):
    home = str(tmp_path)
    main = os.path.join(home, "conf", "plain_acl.yml")
    write(main, ONE.format(ak="firstKey1"), mtime=10**18)
    store = AclStore(*acl_paths(home))
    store.load()
    clock = task.Clock()
    watcher = AclWatcher(store, clock)
    watcher.start()
    return home, main, store, clock, watcher


def test_a_changed_file_is_reloaded_at_the_next_look(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    write(main, ONE.format(ak="secondKey"), mtime=10**18 + 1)
    clock.advance(4.9)
    assert list(store.table.accounts) == ["firstKey1"]
    clock.advance(0.1)
    assert list(store.table.accounts) == ["secondKey"]
    clock.advance(5)
    assert watcher.reloads == 1  # nothing changed since


def test_same_bytes_with_a_new_mtime_do_not_reload(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    write(main, ONE.format(ak="firstKey1"), mtime=10**18 + 5)
    clock.advance(5)
    assert watcher.reloads == 0


def test_added_and_removed_files_reload_everything(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    extra = os.path.join(home, "conf", "acl", "more.yaml")
    write(extra, ONE.format(ak="extraKey1"))
    clock.advance(5)
    assert set(store.table.accounts) == {"firstKey1", "extraKey1"}
    os.remove(extra)
    clock.advance(5)
    assert set(store.table.accounts) == {"firstKey1"}
    assert watcher.reloads == 2


def test_a_bad_edit_keeps_the_accounts_and_is_tried_once(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    write(main, "accounts: [\n", mtime=10**18 + 1)
    clock.advance(5)
    clock.advance(5)
    clock.advance(5)
    assert watcher.reloads == 1
    assert list(store.table.accounts) == ["firstKey1"]
    write(main, ONE.format(ak="fixedKey1"), mtime=10**18 + 2)
    clock.advance(5)
    assert list(store.table.accounts) == ["fixedKey1"]


def test_a_file_caught_empty_mid_write_keeps_the_accounts_until_it_is_whole(tmp_path):
    """An editor that truncates and then writes: a look between the two must not remove every account."""
    home, main, store, clock, watcher = setup(tmp_path)
    for empty in ("", " \n\n"):
        write(main, empty, mtime=10**18 + len(empty) + 1)
        clock.advance(5)
        assert list(store.table.accounts) == ["firstKey1"]
    write(main, ONE.format(ak="writtenKey"), mtime=10**18 + 9)
    clock.advance(5)
    assert list(store.table.accounts) == ["writtenKey"]
    write(main, "accounts: []\n", mtime=10**18 + 10)  # no accounts, said on purpose
    clock.advance(5)
    assert list(store.table.accounts) == []
    # at start an empty file is no accounts, as before: nothing was in force to keep
    write(main, "", mtime=10**18 + 11)
    assert AclStore(*acl_paths(home)).load().accounts == {}


def test_a_save_by_the_broker_itself_is_not_reloaded(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    store.update_account(Account("savedKey1", "savedSecret"))
    clock.advance(5)
    assert watcher.reloads == 0
    assert set(store.table.accounts) == {"firstKey1", "savedKey1"}


def test_stop_stops_looking(tmp_path):
    home, main, store, clock, watcher = setup(tmp_path)
    watcher.stop()
    write(main, ONE.format(ak="secondKey"), mtime=10**18 + 1)
    clock.advance(10)
    assert list(store.table.accounts) == ["firstKey1"]
    assert not clock.getDelayedCalls()
