"""IndexFile layout and lookups: slots, chains, rollover, time windows, max counts, sparse files."""

from __future__ import annotations

import os

import pytest

from mq.common.hashing import index_key_hash
from mq.store.index import (
    ENTRY_SIZE,
    HEADER_SIZE,
    INDEX_ENTRY,
    INDEX_HEADER,
    RESERVE_AHEAD,
    IndexFile,
    IndexService,
    index_file_size,
)

T = 1_700_000_000_000


def test_default_size_and_reservation_as_entries_are_written(tmp_path):
    """Header and slots are reserved on disk at creation, entries 1 MiB ahead of the writer: never 420 MiB."""
    assert index_file_size(5_000_000, 20_000_000) == 420_000_040
    f = IndexFile(str(tmp_path / "big"), 5_000_000, 20_000_000, create=True)
    slots_end = HEADER_SIZE + 5_000_000 * 4
    allocated = os.stat(tmp_path / "big").st_blocks * 512
    assert os.stat(tmp_path / "big").st_size == 420_000_040
    assert slots_end + RESERVE_AHEAD <= allocated < slots_end + RESERVE_AHEAD + (1 << 20)
    keys = [(index_key_hash(f"T#k{i}"), 100 + i) for i in range(RESERVE_AHEAD // ENTRY_SIZE + 10)]
    assert f.put_hashes(keys, T) == len(keys)
    assert f.file.reserved >= slots_end + (len(keys) + 1) * ENTRY_SIZE
    assert os.stat(tmp_path / "big").st_blocks * 512 >= f.file.reserved
    f.close()


def test_entries_are_laid_out_as_rocketmq(tmp_path):
    f = IndexFile(str(tmp_path / "i"), 8, 16, create=True)
    assert f.put_key("T#k", 100, T)
    assert f.put_key("T#k", 200, T + 5000)
    h = index_key_hash("T#k")
    slot = HEADER_SIZE + (h % 8) * 4
    assert int.from_bytes(f.mm[slot : slot + 4], "big") == 2
    e2 = INDEX_ENTRY.unpack_from(f.mm, HEADER_SIZE + 8 * 4 + 2 * ENTRY_SIZE)
    assert e2 == (h, 200, 5, 1)  # hash, offset, seconds since the first entry, previous entry number
    header = INDEX_HEADER.as_dict(INDEX_HEADER.unpack_from(f.mm, 0))
    assert header == dict(begin_timestamp=T, end_timestamp=T + 5000, begin_phy_offset=100, end_phy_offset=200,
                          hash_slot_count=1, index_count=3)  # fmt: skip
    f.close()
    reopened = IndexFile(str(tmp_path / "i"), 8, 16, create=False)
    out = []
    reopened.select("T#k", 10, 0, 2**62, out)
    assert out == [200, 100]


def test_chains_with_colliding_slots_time_window_and_max(tmp_path):
    svc = IndexService(str(tmp_path), slots=1, max_index=1000, now_ms=lambda: T)  # every key in one slot
    for i in range(50):
        svc.build("T", {"KEYS": f"k{i % 5} all", "UNIQ_KEY": f"U{i}"}, i * 100, T + i * 1000)
    offsets, last_ts, last_phy = svc.query("T", "k3", 100, 0, 2**62)
    assert offsets == [i * 100 for i in reversed(range(50)) if i % 5 == 3]
    assert (last_ts, last_phy) == (T + 49_000, 4900)
    assert len(svc.query("T", "all", 7, 0, 2**62)[0]) == 7
    window = svc.query("T", "all", 100, T + 10_000, T + 19_000)[0]
    assert window == [i * 100 for i in reversed(range(10, 20))]
    assert svc.query("T", "U7", 10, 0, 2**62)[0] == [700]
    assert svc.query("OTHER", "U7", 10, 0, 2**62)[0] == []


def test_rollover_to_new_files_and_skip_of_already_indexed_offsets(tmp_path):
    svc = IndexService(str(tmp_path), slots=4, max_index=10, now_ms=lambda: T)
    for i in range(40):
        svc.build("T", {"UNIQ_KEY": f"U{i}"}, i * 10, T + i)
    assert len(os.listdir(tmp_path)) == 5  # 9 entries per file (entry 0 is unused)
    assert all(svc.query("T", f"U{i}", 5, 0, 2**62)[0] == [i * 10] for i in range(40))
    svc.build("T", {"UNIQ_KEY": "U39"}, 390, T)  # re-dispatch after a restart: not indexed twice
    assert svc.query("T", "U39", 5, 0, 2**62)[0] == [390]
    svc.close()
    again = IndexService(str(tmp_path), slots=4, max_index=10, now_ms=lambda: T)
    again.load()
    assert again.indexed_until == 390
    assert again.delete_expired(200) == 2 and again.query("T", "U1", 5, 0, 2**62)[0] == []


def test_prefix_hashing_gives_the_full_key_hash(tmp_path):
    from mq.common.hashing import java_unsigned_hash

    for key in ["", "a", "x" * 300, "é#ü", "T#7F0000010F2C18B4AAC2000000000001", "T#\U0001F600" * 3]:
        for cut in range(len(key) + 1):
            assert index_key_hash(key[cut:], java_unsigned_hash(key[:cut])) == index_key_hash(key)
    svc = IndexService(str(tmp_path), slots=64, max_index=1000, now_ms=lambda: T)
    uniq = "7F0000010F2C18B4AAC2000000000001"
    svc.build_batch("Tö", [{"UNIQ_KEY": uniq, "KEYS": "a b"}, {"UNIQ_KEY": "short", "KEYS": "a"}], 100, [50, 60], T)
    f = svc.files[-1]
    hashes = [INDEX_ENTRY.unpack_from(f.mm, HEADER_SIZE + 64 * 4 + n * ENTRY_SIZE)[:2] for n in range(1, 6)]
    assert hashes == [(index_key_hash("Tö#" + uniq), 100), (index_key_hash("Tö#a"), 100),
                      (index_key_hash("Tö#b"), 100), (index_key_hash("Tö#short"), 150),
                      (index_key_hash("Tö#a"), 150)]  # fmt: skip
    assert svc.query("Tö", "a", 10, 0, 2**62)[0] == [150, 100]


def test_single_key_path_writes_what_the_batch_path_writes(tmp_path):
    """``build`` of a message with only a UNIQ_KEY (the lean path) and ``build_batch`` leave identical files."""
    props = [{"UNIQ_KEY": f"7F0000010F2C18B4AAC2{i:012X}"} for i in range(30)] + [{"UNIQ_KEY": "é-short"}, {}]
    one = IndexService(str(tmp_path / "one"), slots=7, max_index=12, now_ms=lambda: T)
    many = IndexService(str(tmp_path / "many"), slots=7, max_index=12, now_ms=lambda: T)
    for i, p in enumerate(props):
        one.build("Tö", p, 100 + i * 10, T + i * 1500)
        many.build_batch("Tö", [p], 100 + i * 10, [10], T + i * 1500)
    assert len(one.files) == len(many.files) == 3
    for a, b in zip(one.files, many.files):
        assert a.mm[:] == b.mm[:]
    assert one.query("Tö", "é-short", 5, 0, 2**62)[0] == [400]
    assert one.query("Tö", "7F0000010F2C18B4AAC200000000001D", 5, 0, 2**62)[0] == [390]


def test_a_put_killed_before_its_header_write_is_undone_on_load(tmp_path):
    """The process dies after a put wrote entries and slots but not the header; indexing the same messages
    again after the restart must neither chain an entry to itself nor cut the slot's older entries off."""
    svc = IndexService(str(tmp_path), slots=1, max_index=100, now_ms=lambda: T)  # one slot: every key chains
    svc.build("T", {"UNIQ_KEY": "A"}, 100, T)
    svc.build("T", {"UNIQ_KEY": "B"}, 200, T)
    f = svc.files[-1]
    header_before = bytes(f.mm[:HEADER_SIZE])
    svc.build("T", {"UNIQ_KEY": "C", "KEYS": "k1 k2"}, 300, T)  # three entries, then the header
    f.mm[:HEADER_SIZE] = header_before  # ... which the kill prevented
    svc.close()
    again = IndexService(str(tmp_path), slots=1, max_index=100, now_ms=lambda: T)
    again.load()
    assert again.indexed_until == 200
    assert int.from_bytes(again.files[-1].mm[HEADER_SIZE : HEADER_SIZE + 4], "big") == 2  # the slot: B again
    torn = HEADER_SIZE + 4 + 3 * ENTRY_SIZE
    assert again.files[-1].mm[torn : torn + 3 * ENTRY_SIZE] == bytes(3 * ENTRY_SIZE)
    again.build("T", {"UNIQ_KEY": "C", "KEYS": "k1 k2"}, 300, T)  # recovery dispatches it again
    hits = [again.query("T", k, 5, 0, 2**62)[0] for k in ("A", "B", "C", "k1", "k2")]
    assert hits == [[100], [200], [300], [300], [300]]


@pytest.mark.parametrize("runtime", ["cpython", "pypy"])
def test_uniq_key_hashes_with_the_remembered_prefix_are_index_key_hash(tmp_path, monkeypatch, runtime):
    """Keys that share their first 28 characters (a batch's members), keys that do not, short keys, non-ASCII
    keys one topic then another, and two topics in turn: every hash is index_key_hash of ``topic#key``, with
    either runtime's way of hashing a 4-character tail (a table on CPython, four ord()s on PyPy)."""
    import random

    from mq.common.hashing import index_key_hash
    from mq.store import index
    from mq.store.index import IndexService

    monkeypatch.setattr(index, "_TAIL", 4 if runtime == "cpython" else -1)
    monkeypatch.setattr(index, "PYPY", runtime == "pypy")

    service = IndexService(str(tmp_path / "index"), 100, 400, lambda: 0)
    rnd = random.Random(7)
    head = "7F0000010A2B3C4D5E6F"
    keys = []
    for _ in range(300):
        kind = rnd.randrange(6)
        if kind == 0:
            keys.append(head + "%08X" % rnd.randrange(3) + "%04X" % rnd.randrange(1 << 16))
        elif kind == 1:
            keys.append(head[:rnd.randrange(30)])
        elif kind == 2:
            keys.append(head + "0000000é" + "0001")
            keys.append(head + "00000001" + rnd.choice(("00é1", "ab0f", "zz\x00\x7f")))  # 4-character tails
        else:
            keys.append(head + "00000001" + "%04X" % rnd.randrange(1 << 16) + "x" * rnd.randrange(3))
    for topic in ("T", "Other", "T"):
        for key in keys:
            assert service._uniq_hash(topic, key) == index_key_hash(f"{topic}#{key}"), (topic, key)
    for key in keys[:50]:
        for topic in ("T", "Other"):
            assert service._uniq_hash(topic, key) == index_key_hash(f"{topic}#{key}"), (topic, key)
    assert all(tail.isascii() for tail in index._TAIL_SUMS) and len(index._TAIL_SUMS) <= index._TAIL_SUMS_MAX


def test_the_tail_table_stops_growing_at_its_bound(tmp_path, monkeypatch):
    from mq.common.hashing import index_key_hash
    from mq.store import index

    monkeypatch.setattr(index, "_TAIL_SUMS", {})
    monkeypatch.setattr(index, "_TAIL_SUMS_MAX", 3)
    monkeypatch.setattr(index, "_TAIL", 4)  # the table is off under PyPy (-1); its bound is tested on both
    service = index.IndexService(str(tmp_path / "index"), 100, 400, lambda: 0)
    keys = ["7F0000010A2B3C4D5E6F00000001%04X" % i for i in range(10)]
    assert [service._uniq_hash("T", k) for k in keys] == [index_key_hash("T#" + k) for k in keys]
    assert len(index._TAIL_SUMS) == 3


def test_keys_of_a_message_id_s_length_are_found_like_any_key(tmp_path):
    """KEYS tokens of 32 characters (a trace message's keys are message ids) take the UNIQ_KEY hashing:
    ids of one producer, ids of two, a 32-character key that is no id, a non-ASCII one; each is found."""
    service = IndexService(str(tmp_path), slots=64, max_index=1000, now_ms=lambda: T)
    ids = [f"7F0000010A2B3C4D5E6F{t:08X}{n:04X}" for t in (1, 2) for n in range(40)]
    ids += ["0A0000020000000000000000000000FF", "x" * 32, "é" * 32, "ab" * 16]
    service.build("RMQ_SYS_TRACE_TOPIC", {"UNIQ_KEY": "U" * 32, "KEYS": " ".join(ids + ["short"])}, 500, T)
    service.build("Other", {"KEYS": ids[0]}, 900, T)
    f = service.files[-1]
    hashes = [INDEX_ENTRY.unpack_from(f.mm, HEADER_SIZE + 64 * 4 + n * ENTRY_SIZE)[0] for n in range(1, 87)]
    assert hashes == [index_key_hash(f"RMQ_SYS_TRACE_TOPIC#{k}") for k in ["U" * 32] + ids + ["short"]]
    for key in ids + ["short"]:
        assert service.query("RMQ_SYS_TRACE_TOPIC", key, 5, 0, 2**62)[0] == [500], key
    assert service.query("Other", ids[0], 5, 0, 2**62)[0] == [900]
