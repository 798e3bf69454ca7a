"""Pages mapped ahead of the CommitLog writer by the prefault thread: contents and recovery unchanged."""

from __future__ import annotations

import os

from mq.store.mappedfile import PAGE, MappedFile, Prefaulter
from tests.support.processes import wait_until

from .storetestlib import assert_consistent, inner, open_store, put, scan_commitlog, stop


def test_prefaulted_ranges_keep_their_contents(tmp_path):
    f = MappedFile(str(tmp_path / "f"), 0, 64 * PAGE, create=True)
    f.mm[0:5] = b"hello"
    p = Prefaulter()
    p.request(f, 0, 32 * PAGE)
    p.quiesce()  # waits for a running populate
    p.populate = False  # the fallback for kernels without MADV_POPULATE_WRITE
    p.request(f, 32 * PAGE, 32 * PAGE)
    p.stop()
    assert p.requests == 2
    assert f.mm[0:5] == b"hello" and f.mm[5:].count(0) == 64 * PAGE - 5
    f.destroy()
    p.request(f, 0, PAGE)  # after stop: restarts on demand; a closed file is skipped, not an error
    p.stop()


class _PyPyMap:
    """A mapping whose ``madvise`` fails as PyPy 7.3's does: a SystemError, the OSError's errno out of reach."""

    def __init__(self) -> None:
        self.calls = 0

    def madvise(self, flags, start, length):
        self.calls += 1
        raise SystemError("unexpected internal exception (please report a bug): <OSError object>")


def test_a_madvise_failure_without_an_errno_falls_back_to_fadvise_for_good(tmp_path):
    f = MappedFile(str(tmp_path / "f"), 0, 8 * PAGE, create=True)
    mm, f.mm = f.mm, _PyPyMap()
    p = Prefaulter()
    try:
        p.request(f, 0, 4 * PAGE)
        wait_until(lambda: not p.populate, timeout=10, what="the prefaulter to give up MADV_POPULATE_WRITE")
        p.request(f, 4 * PAGE, 4 * PAGE)
        wait_until(lambda: p._pending is None, timeout=10, what="the second range to be taken")
        p.quiesce()  # waits for the fadvise
        assert f.mm.calls == 1  # not tried again on every range
    finally:
        p.stop()
        f.mm = mm
        f.destroy()


def test_store_with_and_without_prefault_writes_the_same_bytes(tmp_path):
    logs = []
    for ahead in (0, 3 * PAGE):
        store = open_store(tmp_path / str(ahead), commit_log_prefault_ahead=ahead)
        assert (store.commitlog.prefaulter is not None) == bool(ahead)
        for i in range(200):  # rolls over several 16 KiB files
            put(store, inner(body=bytes([i]) * (i * 7 % 300), queue_id=i % 3, uniq=f"U{i}"))
        assert_consistent(store)
        records = list(scan_commitlog(store))
        stop(store)
        root = tmp_path / str(ahead) / "commitlog"
        logs.append((records, [(root / n).read_bytes() for n in sorted(os.listdir(root))]))
    assert logs[0] == logs[1]
    store = open_store(tmp_path / str(3 * PAGE), commit_log_prefault_ahead=3 * PAGE)  # recovers as before
    assert_consistent(store)
    assert store.get_max_offset_in_queue("T", 0) == 67
    stop(store)
