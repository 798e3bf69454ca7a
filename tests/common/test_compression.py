"""Bounded inflation: what a compressed body from the network may cost."""

from __future__ import annotations

import zlib

import pytest

from mq.common.compression import InflateLimitError, inflate, inflate_prefix


def test_a_whole_stream_inflates_up_to_and_at_its_bound():
    data = bytes(range(256)) * 40
    packed = zlib.compress(data, 9)
    assert inflate(packed, len(data)) == data
    assert inflate(packed, 1 << 20) == data
    assert inflate(zlib.compress(b""), 0) == b""


def test_one_byte_past_the_bound_is_refused():
    data = b"x" * 10_000
    with pytest.raises(InflateLimitError, match="more than 9999 bytes"):
        inflate(zlib.compress(data), 9_999)


def test_a_bomb_is_refused_at_the_bound_not_inflated_whole():
    bomb = zlib.compress(b"\0" * (256 << 20), 9)  # 256 MiB in about 250 KiB
    assert len(bomb) < 300_000
    with pytest.raises(InflateLimitError):
        inflate(bomb, 1 << 20)


def test_corrupt_and_truncated_streams_are_zlib_errors():
    packed = zlib.compress(b"hello world" * 100)
    with pytest.raises(zlib.error):
        inflate(b"not zlib at all", 1 << 20)
    with pytest.raises(zlib.error):
        inflate(packed[: len(packed) // 2], 1 << 20)


def test_a_prefix_stops_at_its_bound_and_corruption_is_still_an_error():
    text = b"".join(b"record %d\n" % i for i in range(100_000))
    packed = zlib.compress(text)
    assert inflate_prefix(packed, 1000) == text[:1000]
    assert inflate_prefix(packed, len(text) + 1) == text
    bomb = zlib.compress(b"\0" * (64 << 20))
    assert len(inflate_prefix(bomb, 4096)) == 4096  # a bomb costs its bound, not its size
    with pytest.raises(zlib.error):
        inflate_prefix(b"not zlib at all", 1000)
