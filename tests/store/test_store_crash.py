"""Crash tests with real processes: a writer killed with SIGKILL mid-append, then reopened and checked."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mq.common.message_record import BLANK_MAGIC_CODE, BLANK_RECORD, decode_message_ext
from mq.store import FlushDiskType

from .storetestlib import assert_consistent, open_store, scan_commitlog

REPO = Path(__file__).resolve().parents[2]


def _run_and_kill(root: Path, flush_type: FlushDiskType, want: int) -> list:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(root), flush_type.value],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    lines = []
    deadline = time.monotonic() + 30
    try:
        assert proc.stdout.readline() == b"READY\n", proc.stderr.read().decode()
        while len(lines) < want and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-append: the writer never stops on its own
        # Read through the same buffered pipe objects: communicate() would read the raw descriptors and
        # skip what readline() had already buffered, splitting a line in two.
        proc.wait(timeout=30)
        rest, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    lines.extend(rest.splitlines(keepends=True))
    done = [ln.decode().split() for ln in lines if ln.endswith(b"\n")]
    assert len(done) >= want, f"only {len(done)} puts completed: {err.decode()[-2000:]}"
    return done


@pytest.mark.parametrize("flush_type", [FlushDiskType.SYNC_FLUSH, FlushDiskType.ASYNC_FLUSH])
def test_killed_writer_loses_no_completed_put(tmp_path, flush_type):
    done = _run_and_kill(tmp_path, flush_type, want=1500)
    assert (tmp_path / "abort").exists()  # it did not stop cleanly
    store = open_store(
        tmp_path, mapped_file_size_commit_log=64 * 1024, mapped_file_size_consume_queue=64 * 20,
        max_hash_slot_num=64, max_index_num=512,
    )  # fmt: skip
    assert len(store.commitlog.files.files) > 3  # the test crossed file boundaries
    for phy, size, digest, topic, qid, qoff, uniq in done:
        raw = store.look_message_by_offset(int(phy))
        assert raw is not None and len(raw) == int(size), f"completed put at {phy} lost"
        assert hashlib.sha1(raw).hexdigest() == digest, f"completed put at {phy} changed"
        r = store.get_message("g", topic, int(qid), int(qoff), 1)
        assert r.message_buffers == [raw]
        hits = store.query_message(topic, uniq, 4, 0, 2**62).message_buffers
        assert [decode_message_ext(h).commit_log_offset for h in hits] == [int(phy)]
    # the tail past the last whole record is gone: zeros up to the end of the last file
    last = store.commitlog.files.files[-1]
    end = store.get_max_phy_offset() - last.start
    assert last.mm[end : end + 4096].count(0) == len(last.mm[end : end + 4096])
    assert_consistent(store)
    # and it carries on from there
    records = scan_commitlog(store)
    end_of_last = records[-1].commit_log_offset + records[-1].store_size
    if store.get_max_phy_offset() != end_of_last:
        # The kill came right after an end-of-file blank: the log ends at that file's end, past the blank.
        f = store.commitlog.files.find(end_of_last)
        size, magic = BLANK_RECORD.unpack_from(f.mm, end_of_last - f.start)
        assert magic == BLANK_MAGIC_CODE and end_of_last + size == f.end == store.get_max_phy_offset()
