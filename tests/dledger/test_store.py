"""The replicated log on disk: the entry layout's two forms agree, and recovery keeps exactly the intact
prefix after a torn write, a lost tail or a flipped byte."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mq.dledger import entry as codec
from mq.dledger import store as store_module
from mq.dledger.messages import Append, Entry, HardState, Truncate
from mq.dledger.store import DurableLog, MetaStore, StoreCorrupted


def _entries(n, first=1, term=1, size=30):
    return [Entry(i, term, bytes([i % 251]) * (size + i % 7)) for i in range(first, first + n)]


@settings(max_examples=200, deadline=None)
@given(index=st.integers(1, 2**63 - 1), term=st.integers(0, 2**63 - 1), pos=st.integers(0, 2**62),
       body=st.binary(max_size=300))
def test_fast_form_builds_what_the_declaration_builds(index, term, pos, body):
    data = codec.encode(Entry(index, term, body), pos)
    parsed = codec.ENTRY.parse(data)
    assert codec.ENTRY.build(dict(parsed)) == data
    assert (parsed.index, parsed.term, parsed.pos, parsed.body, parsed.size) == (index, term, pos, body, len(data))
    assert codec.decode_at(data, 0, pos) == (Entry(index, term, body), len(data))


def _reopen(path, segment=1024):
    log = DurableLog(str(path), segment)
    n = log.recover()
    got = list(log.iter_entries())
    assert n == len(got)
    return log, got


def test_append_sync_reopen_across_segments(tmp_path):
    log, got = _reopen(tmp_path)
    assert got == [] and log.sync() is None
    entries = _entries(60)
    log.append(entries)
    assert log.sync() == (60, 1)
    assert len(log.segments) > 3  # 60 entries of ~80 bytes in 1 KiB segments
    assert log.read(37) == entries[36]
    log.close()
    log, got = _reopen(tmp_path)
    assert got == entries and log.recovered_cut == 0


def test_truncate_then_append_survives_reopen(tmp_path):
    log, _ = _reopen(tmp_path)
    log.apply([Append(tuple(_entries(40)))])
    newer = _entries(15, first=21, term=2)
    log.apply([Truncate(21), Append(tuple(newer))])
    log.sync()
    log.close()
    log, got = _reopen(tmp_path)
    assert got == _entries(20) + newer
    log.truncate_from(1)
    log.sync()
    log.close()
    log, got = _reopen(tmp_path)
    assert got == []
    log.append(_entries(3, term=5))
    assert log.sync() == (3, 5)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 10_000), flip=st.booleans())
def test_recovery_keeps_exactly_the_intact_prefix(tmp_path_factory, cut, flip):
    """A crash may leave any prefix of the written bytes (``cut``), or garble one byte (``flip``); positions
    kept every 8th entry (not 64th) so that recovery rebuilds several anchors."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store_module, "INDEX_EVERY", 8)
        _crash_and_recover(tmp_path_factory.mktemp("log"), cut, flip)


def _crash_and_recover(path, cut, flip):
    log, _ = _reopen(path, 4096)
    entries = _entries(50)
    log.append(entries)
    log.sync()
    positions = [None] + [log.position(i) for i in range(1, 51)]
    total = log.end
    log.close()
    cut %= total
    names = sorted(os.listdir(path))
    for name in names:  # cut the byte space at ``cut``: truncate or garble the segment holding it
        start = int(name)
        size = os.path.getsize(path / name)
        if start <= cut < start + size:
            if flip:
                with open(path / name, "r+b") as f:
                    f.seek(cut - start)
                    b = f.read(1)
                    f.seek(cut - start)
                    f.write(bytes([b[0] ^ 0x5A]))
            else:
                os.truncate(path / name, cut - start)
        elif start > cut and not flip:
            os.unlink(path / name)
    log, got = _reopen(path, 4096)
    intact = sum(1 for i in range(1, 51) if (positions[i + 1] if i < 50 else total) <= cut)
    assert got == entries[:intact]
    assert [log.position(i) for i in range(1, intact + 1)] == positions[1 : intact + 1]
    log.append(_entries(2, first=intact + 1, term=3))
    log.sync()
    log.close()
    assert _reopen(path, 4096)[1] == entries[:intact] + _entries(2, first=intact + 1, term=3)


def test_a_segment_that_does_not_follow_is_cut(tmp_path):
    log, _ = _reopen(tmp_path)
    log.append(_entries(30))
    log.sync()
    log.close()
    names = sorted(os.listdir(tmp_path))
    os.unlink(tmp_path / names[1])  # a gap: everything after it must go
    log, got = _reopen(tmp_path)
    assert got == _entries(30)[: len(got)] and 0 < len(got) < 30
    assert len(os.listdir(tmp_path)) == 1


def test_meta_round_trip_and_refusal_of_a_garbled_file(tmp_path):
    meta = MetaStore(str(tmp_path))
    assert meta.load() == HardState(0, None)
    meta.save(HardState(7, "n2"))
    meta.save(HardState(8, None))
    assert meta.load() == HardState(8, None)
    meta.save(HardState(9, "n1"))
    assert MetaStore(str(tmp_path)).load() == HardState(9, "n1")
    data = bytearray((tmp_path / "meta").read_bytes())
    data[8] ^= 1
    (tmp_path / "meta").write_bytes(bytes(data))
    with pytest.raises(StoreCorrupted):
        meta.load()


def test_retention_deletes_whole_segments_and_keeps_the_base(tmp_path):
    log, _ = _reopen(tmp_path)
    entries = _entries(60)
    log.append(entries)
    log.sync()
    segments = list(log.segments)
    assert log.compactable(10) is None or log.compactable(10) < 10
    base = log.compactable(40)
    assert base is not None and base <= 40 and log.position(base + 1) in segments
    assert log.compactable(60) < 60  # the last segment always stays
    log.compact(base)
    assert log.base_index == base and log.segments[0] == log.base_pos == log.position(base + 1)
    assert log.runs.term_at(base) == 1 and log.runs.term_at(base - 1) == -1
    assert list(log.iter_entries()) == entries[base:]
    with pytest.raises(ValueError):
        log.truncate_from(base)
    log.close()
    log, got = _reopen(tmp_path)
    assert got == entries[base:] and log.base_index == base and log.runs.term_at(base) == 1
    log.truncate_from(base + 1)  # everything after the base: the log is empty and starts there
    log.append(_entries(2, first=base + 1, term=4))
    log.sync()
    log.close()
    assert _reopen(tmp_path)[1] == _entries(2, first=base + 1, term=4)


def test_retention_by_age_and_an_interrupted_deletion(tmp_path):
    log, _ = _reopen(tmp_path)
    log.append(_entries(60))
    log.sync()
    assert log.compactable(60, written_before=0) is None  # every file is newer than 1970
    old = log.segments[:2]
    for start in old:
        os.utime(tmp_path / f"{start:020d}", (1000, 1000))
    base = log.compactable(60, written_before=2000)
    assert log.position(base + 1) == log.segments[2]
    # a crash after the base record was written and before the files went: recovery deletes them
    names_before = sorted(os.listdir(tmp_path))
    log.compact(base)
    log.close()
    for start in old:
        (tmp_path / f"{start:020d}").write_bytes(b"left over")
    assert sorted(os.listdir(tmp_path)) == names_before + ["base"]
    log, got = _reopen(tmp_path)
    assert got == _entries(60)[base:] and f"{old[0]:020d}" not in os.listdir(tmp_path)


def test_a_garbled_base_or_a_missing_first_segment_refuses_to_load(tmp_path):
    log, _ = _reopen(tmp_path)
    log.append(_entries(60))
    log.sync()
    log.compact(log.compactable(30))
    first = log.segments[0]
    assert len(log.segments) > 1
    log.close()
    data = bytearray((tmp_path / "base").read_bytes())
    (tmp_path / "base").write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    with pytest.raises(StoreCorrupted):
        _reopen(tmp_path)
    (tmp_path / "base").write_bytes(bytes(data))
    os.unlink(tmp_path / f"{first:020d}")
    with pytest.raises(StoreCorrupted):
        _reopen(tmp_path)


def test_reset_starts_an_empty_log_after_a_given_base(tmp_path):
    log, _ = _reopen(tmp_path)
    log.append(_entries(20))
    log.sync()
    log.reset(500, 7, 123_456)
    log.append(_entries(3, first=501, term=7))
    log.sync()
    assert log.segments == [123_456]
    log.close()
    log, got = _reopen(tmp_path)
    assert got == _entries(3, first=501, term=7) and log.position(501) == 123_456
    assert log.runs.term_at(500) == 7


def test_positions_from_the_sparse_index_match_every_entry(tmp_path, monkeypatch):
    """Positions kept for every INDEX_EVERY-th entry only: every other one is found by hopping headers, also
    after truncations and retention moved the anchors, and after a restart."""
    monkeypatch.setattr(store_module, "INDEX_EVERY", 4)
    log, _ = _reopen(tmp_path)
    log.append(_entries(60))
    log.sync()
    exact = {}
    pos = 0
    for e in _entries(60):
        exact[e.index] = pos
        pos += codec.HEADER_SIZE + len(e.body)
    assert [log.position(i) for i in range(1, 61)] == [exact[i] for i in range(1, 61)]
    assert len(log._index[1]) == 15  # 4, 8, ..., 60
    log.truncate_from(43)
    log.append(_entries(10, first=43, term=2))
    assert [log.position(i) for i in range(1, 43)] == [exact[i] for i in range(1, 43)]
    base = log.compactable(40)
    log.compact(base)
    now = _entries(42) + _entries(10, first=43, term=2)
    assert log.position(base + 1) == log.segments[0] and list(log.iter_entries()) == now[base:]
    log.sync()
    log.close()
    reopened, got = _reopen(tmp_path)
    assert [reopened.position(i) for i in range(base + 1, 53)] == [log.position(i) for i in range(base + 1, 53)]


def test_a_batch_goes_to_its_segment_in_one_write(tmp_path, monkeypatch):
    """One ``pwrite`` per batch (per segment it fills), not per entry: the same bytes, a system call each."""
    calls = []
    monkeypatch.setattr(store_module, "pwrite", lambda fd, data, off: (calls.append(len(data)), os.pwrite(fd, data, off))[1])
    log = DurableLog(str(tmp_path), 1024)
    log.recover()
    log.append(_entries(1))  # the first entry opens the segment
    calls.clear()
    log.append(_entries(10, first=2))  # 10 entries of 78-84 bytes: 812 bytes, still within the segment
    assert len(calls) == 1
    log.append(_entries(10, first=12))  # crosses into a second segment: the fitting ones in one write
    assert len(log.segments) == 2 and len(calls) == 1 + 3  # the one that fits, the roll-over, the other 8 in one
    log.sync()
    assert _reopen(tmp_path)[1] == _entries(21)
