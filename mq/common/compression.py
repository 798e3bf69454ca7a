"""zlib inflation with a bound on its output.

A compressed body from the network (a broker's registration, a message body, a trace) of one megabyte can
inflate to a gigabyte: unbounded, one request would stall the reactor and take the memory of the process.
"""

from __future__ import annotations

import zlib

#: A message body a client inflates: 16 times the broker's default maxMessageSize (4 MiB), which bounds the
#: compressed size only. Java's consumer has no bound; a body past this one is handed over as it came.
MAX_INFLATED_BODY = 64 * 1024 * 1024


class InflateLimitError(ValueError):
    """The data inflates to more than the bound allows."""


def inflate(data: bytes, limit: int) -> bytes:
    """``data`` inflated (a whole zlib stream, as Java's ``Inflater`` writes it), at most ``limit`` bytes.

    Raises ``InflateLimitError`` beyond the bound and ``zlib.error`` for a corrupt or truncated stream; the
    work done before giving up is bounded by ``limit`` too.
    """
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if not inflater.eof:
        if inflater.unconsumed_tail or len(out) >= limit:
            raise InflateLimitError(f"inflates to more than {limit} bytes")
        raise zlib.error("incomplete or truncated stream")
    return out


def inflate_prefix(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes at most of ``data`` inflated: for a reader that can use the start of a long
    text (a trace message's records before the bound). Raises ``zlib.error`` for a corrupt stream."""
    return zlib.decompressobj().decompress(data, limit)
