"""IP patterns of ``plain_acl.yml`` (RocketMQ's ``RemoteAddressStrategyFactory``), for IPv4 and IPv6.

One pattern is one of five strategies, chosen by its shape: blank (never matches), ``*`` (always),
multiple (``10.0.0.{1,2}`` or ``10.0.0.1,10.0.0.2``), range (``10.0.1-9.*``: the first of the 2nd..last
parts that is ``*`` or ``n-m`` bounds that part, the parts before it must match, the parts after it are not
looked at) and one (a literal address). A pattern that cannot be understood raises ``IpPatternError`` when
it is compiled, so a bad file is refused when it is loaded rather than silently matching nothing.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import FrozenSet, Optional, Tuple

import attr

ANY_PATTERNS = frozenset({"*", "*.*.*.*", "*:*:*:*:*:*:*:*"})


class IpPatternError(ValueError):
    """A pattern no strategy accepts; the message names the pattern."""


#: An address as parts: 4 octets (IPv4) or 8 groups (IPv6).
Parts = Tuple[int, ...]


@functools.lru_cache(maxsize=4096)
def address_parts(address: str) -> Optional[Parts]:
    """The parts of an IPv4 or IPv6 literal (IPv4-mapped IPv6 as IPv4); None when it is neither."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return tuple(ip.packed)
    packed = ip.packed
    return tuple(int.from_bytes(packed[i:i + 2], "big") for i in range(0, 16, 2))


def host_of(remote: str) -> str:
    """The caller's address from a channel's ``host:port`` (text after the last ``:`` removed)."""
    host, sep, _ = remote.rpartition(":")
    return host if sep else remote


class Strategy:
    """Matches a caller's address (its parts, or None when it is not an IP literal)."""

    kind = ""

    def match(self, parts: Optional[Parts]) -> bool:
        raise NotImplementedError

    def matches(self, address: str) -> bool:
        return self.match(address_parts(address))


@attr.s(frozen=True, slots=True)
class BlankStrategy(Strategy):
    kind = "blank"

    def match(self, parts: Optional[Parts]) -> bool:
        return False


@attr.s(frozen=True, slots=True)
class AnyStrategy(Strategy):
    kind = "null"

    def match(self, parts: Optional[Parts]) -> bool:
        return True


@attr.s(frozen=True, slots=True)
class MultipleStrategy(Strategy):
    kind = "multiple"
    addresses: FrozenSet[Parts] = attr.ib()

    def match(self, parts: Optional[Parts]) -> bool:
        return parts in self.addresses


@attr.s(frozen=True, slots=True)
class RangeStrategy(Strategy):
    """``prefix`` must equal the address's first parts; the next part must lie in ``low..high``."""

    kind = "range"
    width: int = attr.ib()  # 4 or 8 parts
    prefix: Parts = attr.ib()
    low: int = attr.ib()
    high: int = attr.ib()

    def match(self, parts: Optional[Parts]) -> bool:
        if parts is None or len(parts) != self.width:
            return False
        n = len(self.prefix)
        return parts[:n] == self.prefix and self.low <= parts[n] <= self.high


@attr.s(frozen=True, slots=True)
class OneStrategy(Strategy):
    kind = "one"
    address: Parts = attr.ib()

    def match(self, parts: Optional[Parts]) -> bool:
        return parts == self.address


def _literal(text: str, pattern: str) -> Parts:
    parts = address_parts(text)
    if parts is None:
        raise IpPatternError(f"{text!r} in IP pattern {pattern!r} is not an IPv4 or IPv6 address")
    return parts


def _braces(pattern: str) -> MultipleStrategy:
    """``a.b.c.{x,y}`` or ``a:...:{x,y}``: the text before ``{`` followed by each listed ending."""
    head, brace, tail = pattern.rpartition("{")
    sep = ":" if ":" in pattern else "."
    if not brace or (head and not head.endswith(sep)) or "}" in head:
        raise IpPatternError(f"IP pattern {pattern!r}: only the last part may be a {{a,b}} list")
    items = [i.strip() for i in tail[:-1].split(",") if i.strip()]
    if not items:
        raise IpPatternError(f"IP pattern {pattern!r} lists no address")
    if sep == "." and head.count(".") != 3:
        raise IpPatternError(f"IP pattern {pattern!r} needs four parts")
    return MultipleStrategy(frozenset(_literal(head + i, pattern) for i in items))


def _range(pattern: str) -> RangeStrategy:
    v6 = ":" in pattern
    sep, base, top, width = (":", 16, 0xFFFF, 8) if v6 else (".", 10, 255, 4)
    texts = [p.strip() for p in pattern.split(sep)]
    if len(texts) > width or len(texts) < 2 or "" in texts:
        raise IpPatternError(f"IP pattern {pattern!r} does not have 2 to {width} parts")

    def number(text: str) -> int:
        try:
            value = int(text, base)
        except ValueError:
            value = -1
        if not 0 <= value <= top or text.startswith(("+", "-")):
            raise IpPatternError(f"{text!r} in IP pattern {pattern!r} is not a number in 0..{top:{'x' if v6 else 'd'}}")
        return value

    for i, text in enumerate(texts):
        if text == "*" or "-" in text:
            if i == 0:
                raise IpPatternError(f"IP pattern {pattern!r}: the first part cannot be a range")
            if text == "*":
                low, high = 0, top
            else:
                a, _, b = text.partition("-")
                low, high = number(a), number(b)
                if low > high:
                    raise IpPatternError(f"IP pattern {pattern!r}: range {text} runs backwards")
            return RangeStrategy(width, tuple(number(t) for t in texts[:i]), low, high)
    raise IpPatternError(f"IP pattern {pattern!r} has no range part")


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: Optional[str]) -> Strategy:
    """The strategy for one pattern; raises IpPatternError naming a pattern that makes no sense."""
    text = (pattern or "").strip()
    if not text:
        return BlankStrategy()
    if text in ANY_PATTERNS:
        return AnyStrategy()
    if text.endswith("}"):
        return _braces(text)
    if "," in text:
        items = [i.strip() for i in text.split(",") if i.strip()]
        return MultipleStrategy(frozenset(_literal(i, text) for i in items))
    if "*" in text or "-" in text:
        return _range(text)
    return OneStrategy(_literal(text, text))
