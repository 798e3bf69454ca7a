"""IP pattern strategies of plain_acl.yml, as RocketMQ's RemoteAddressStrategyFactory chooses and applies them."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.acl.ip_pattern import IpPatternError, compile_pattern, host_of

octet = st.integers(0, 255)
ipv4 = st.tuples(octet, octet, octet, octet).map(lambda t: ".".join(map(str, t)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))


@pytest.mark.parametrize("pattern, kind", [
    ("", "blank"), ("  ", "blank"), (None, "blank"),
    ("*", "null"), ("*.*.*.*", "null"), ("*:*:*:*:*:*:*:*", "null"),
    ("192.168.1.{1,2}", "multiple"), ("1.2.3.4,5.6.7.8", "multiple"), ("fe80::1,::1", "multiple"),
    ("1:2:3:4:5:6:7:{1,2}", "multiple"),
    ("10.*.*.*", "range"), ("10.1.2-5.*", "range"), ("fe80:*", "range"), ("fe80:1:a-f:*", "range"),
    ("10.1.2.3", "one"), ("::1", "one"),
])
def test_pattern_shape_chooses_the_strategy(pattern, kind):
    assert compile_pattern(pattern).kind == kind


@pytest.mark.parametrize("pattern", [
    "10.1.2", "not-an-ip", "300.1.1.1", "*.1.1.1", "1-2.1.1.1", "10.5-1.*.*", "10.1.{a,b}.3",
    "10.1.2.{}", "10.1.{1,2}", "10.1.2.3,x", "10.1.256-300.*", "1.2.3.4.5-6", "10.-1.*.*", "fe80:fffff-1:*",
])
def test_nonsense_patterns_are_refused_at_compile(pattern):
    with pytest.raises(IpPatternError):
        compile_pattern(pattern)


@given(ipv4 | ipv6)
def test_blank_never_and_star_always_match(address):
    assert not compile_pattern("").matches(address)
    assert compile_pattern("*").matches(address)


@given(ipv4, ipv4)
def test_one_matches_only_itself(a, b):
    assert compile_pattern(a).matches(a)
    assert compile_pattern(a).matches(b) == (a == b)


@given(ipv6)
def test_ipv6_one_compares_expanded_forms(a):
    full = ipaddress.IPv6Address(a).exploded
    assert compile_pattern(full).matches(a) and compile_pattern(a).matches(full)


@given(st.lists(ipv4, min_size=1, max_size=5), ipv4)
def test_comma_list_matches_exactly_its_members(members, other):
    strategy = compile_pattern(",".join(members + ["255.255.255.255"]))
    assert all(strategy.matches(m) for m in members)
    assert strategy.matches(other) == (other in members or other == "255.255.255.255")


@given(octet, octet, st.sets(octet, min_size=1, max_size=6), octet)
def test_brace_list_expands_the_last_part(a, b, lasts, probe):
    strategy = compile_pattern(f"10.{a}.{b}.{{{','.join(map(str, lasts))}}}")
    assert strategy.matches(f"10.{a}.{b}.{probe}") == (probe in lasts)
    assert not strategy.matches(f"11.{a}.{b}.{probe}")


@given(st.integers(1, 3), octet, octet, ipv4)
def test_first_range_part_bounds_and_later_parts_are_ignored(index, x, y, address):
    low, high = min(x, y), max(x, y)
    parts = ["10", "20", "30", "40"]
    parts[index] = f"{low}-{high}"
    strategy = compile_pattern(".".join(parts))
    got = [int(p) for p in address.split(".")]
    expected = got[:index] == [10, 20, 30][:index] and low <= got[index] <= high
    assert strategy.matches(address) == expected
    # Later parts ignored: rewrite them and the answer stays.
    probe = [10, 20, 30][:index] + [low] + [7] * (3 - index)
    assert strategy.matches(".".join(map(str, probe)))


def test_star_range_and_ipv6_ranges():
    assert compile_pattern("192.168.*.*").matches("192.168.77.3")
    assert not compile_pattern("192.168.*.*").matches("192.169.0.1")
    assert not compile_pattern("192.168.*.*").matches("::1")
    v6 = compile_pattern("fe80:0:0:a-f:*")
    assert v6.matches("fe80::c:1") is False  # group 4 is 0 here
    assert v6.matches("fe80:0:0:c::1")
    assert not v6.matches("fe80:0:0:10::1")
    assert compile_pattern("1:2:3:4:5:6:7:{1,a}").matches("1:2:3:4:5:6:7:a")


def test_ipv4_mapped_and_bracketed_addresses_and_host_of():
    assert compile_pattern("10.0.0.1").matches("::ffff:10.0.0.1")
    assert compile_pattern("::1").matches("[::1]")
    assert host_of("10.0.0.1:4242") == "10.0.0.1"
    assert host_of("::1:4242") == "::1"
    assert host_of("somehost") == "somehost"
    assert not compile_pattern("10.0.0.1").matches("somehost")
    assert not compile_pattern("10.*").matches("somehost")
