"""``ResponseMemo``: encoded answers to repeated read-only requests, replayed with each request's own opaque.

Every client asks the NameServer for each topic's route every 30 s, and between two changes of the routes the
answer to a given request differs only in its opaque. The memo keys an answer by the request's header and body
with the opaque cut out, so a hit is a request byte-identical to one answered before, opaque aside; it is
answered by pasting that opaque into the stored response frame, with no decoding, dispatch or encoding. The
memo is emptied whenever ``state()`` (what the answers were computed from) changes.

Where the opaque is: in a ROCKETMQ binary header at a fixed place (bytes 5-9); in a JSON header it is the digits
after the one ``"opaque":`` key. Inside JSON strings a quote is escaped, so that key cannot be spelt by a value;
an answer is stored only when the key occurs once in the request and once in the response. A later request
whose header, with the digits after its first ``"opaque":`` cut out, equals a stored key therefore has its
opaque at the same place, as the stored one had.

Only requests with no body and a header under ``MAX_HEADER`` bytes are remembered (route queries from every
client are such), and the memo holds at most ``max_bytes`` of keys and answers, oldest dropped first: a client
sending a new 4 MiB body with each GET_ROUTEINFO_BY_TOPIC grew the NameServer by 4 MB per request.
"""

from __future__ import annotations

import re
import struct
from typing import Callable, Dict, Hashable, Iterable, Optional, Tuple

from mq.remoting.codes import SerializeType
from mq.remoting.command import RemotingCommand

_JSON = int(SerializeType.JSON)
_ROCKETMQ = int(SerializeType.ROCKETMQ)
_MARKER = b'"opaque":'
# At most 9 digits: every such number is a valid Java int; larger opaques take the ordinary path.
_JSON_OPAQUE = re.compile(rb'"opaque":(-?[0-9]{1,9})(?![0-9])')
_BINARY_OPAQUE = slice(5, 9)
_PREFIX = struct.Struct(">ii")
#: Longest request header remembered; a client's route query header is about 200 bytes.
MAX_HEADER = 1024

#: (serialize type, response header before the opaque, response header after it + body, response body length,
#: (request code, response code))
Entry = Tuple[int, bytes, bytes, int, Tuple[int, int]]


class ResponseMemo:
    """Answers for ``codes``, valid while ``state()`` returns the value they were computed under."""

    def __init__(
        self, codes: Iterable[int], state: Callable[[], Hashable], max_entries: int = 10_000, max_bytes: int = 64 << 20,
    ) -> None:  # fmt: skip
        self.codes = frozenset(int(c) for c in codes)
        self.state = state
        self.max_entries = max_entries
        #: Bound on the keys' request headers plus the stored response frames, summed over all entries.
        self.max_bytes = max_bytes
        self.size = 0
        #: Answers given from the memo since the caller last took them, by (request code, response code).
        self.hits: Dict[Tuple[int, int], int] = {}
        self._entries: Dict[Tuple[int, bytes, bytes], Entry] = {}
        self._state: Hashable = None

    @staticmethod
    def _opaque_span(serialize_type: int, header: bytes) -> Optional[Tuple[int, int]]:
        """Where the opaque is written in ``header``, or None if it has no usable one."""
        if serialize_type == _JSON:
            m = _JSON_OPAQUE.search(header)
            return None if m is None else m.span(1)
        if serialize_type == _ROCKETMQ and len(header) >= 9:
            return 5, 9
        return None

    def _reset_if_stale(self) -> bool:
        state = self.state()
        if state == self._state:
            return False
        self._entries.clear()
        self.size = 0
        self._state = state
        return True

    @staticmethod
    def _rememberable(header: bytes, body: bytes) -> bool:
        """Only small requests without a body: the key holds the request, so a big one would be kept whole."""
        return not body and len(header) < MAX_HEADER

    @staticmethod
    def _entry_size(key: Tuple[int, bytes, bytes], entry: Entry) -> int:
        return len(key[1]) + len(key[2]) + len(entry[1]) + len(entry[2])

    def answer(self, serialize_type: int, header: bytes, body: bytes) -> Optional[bytes]:
        """The whole response frame for this request, or None (not memoised: take the ordinary path)."""
        if self._reset_if_stale() or not self._entries or not self._rememberable(header, body):
            return None
        span = self._opaque_span(serialize_type, header)
        if span is None:
            return None
        s, e = span
        entry = self._entries.get((serialize_type, header[:s] + header[e:], body))
        if entry is None:
            return None
        st, before, after, body_len, codes = entry
        hlen = len(before) + (e - s) + len(after) - body_len
        hits = self.hits
        hits[codes] = hits.get(codes, 0) + 1
        return b"".join((_PREFIX.pack(4 + hlen + body_len, (st << 24) | hlen), before, header[s:e], after))

    def remember(
        self, serialize_type: int, header: bytes, body: bytes, request: RemotingCommand, response: RemotingCommand,
        encoded: bytes,
    ) -> None:  # fmt: skip
        """Keep ``encoded`` (``response`` to ``request``, as just sent) for requests like it."""
        if request.code not in self.codes or not self._rememberable(header, body):
            return
        self._reset_if_stale()
        span = self._opaque_span(serialize_type, header)
        if span is None:
            return
        s, e = span
        if serialize_type == _JSON and (header.count(_MARKER) != 1 or int(header[s:e]) != request.opaque):
            return
        total, word = _PREFIX.unpack_from(encoded, 0)
        st, hlen = word >> 24, word & 0xFFFFFF
        response_header = encoded[8 : 8 + hlen]
        rspan = self._opaque_span(st, response_header)
        if rspan is None or response_header[rspan[0] : rspan[1]] != header[s:e]:
            return
        if st == _JSON and response_header.count(_MARKER) != 1:
            return
        before = encoded[8 : 8 + rspan[0]]
        after = encoded[8 + rspan[1] :]
        key = (serialize_type, header[:s] + header[e:], body)
        entry: Entry = (st, before, after, total - 4 - hlen, (request.code, response.code))
        size = self._entry_size(key, entry)
        if size > self.max_bytes:
            return
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self.size -= self._entry_size(key, old)
        while entries and (len(entries) >= self.max_entries or self.size + size > self.max_bytes):
            oldest = next(iter(entries))
            self.size -= self._entry_size(oldest, entries.pop(oldest))
        entries[key] = entry
        self.size += size
