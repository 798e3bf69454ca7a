"""Fixed-size binary layouts declared once as construct schemas, with a derived ``struct`` fast form.

Every binary layout of the project is a construct schema (the readable, testable declaration). Interpreting
a construct Struct costs ~10 µs even for 8 bytes, so hot paths use the ``struct.Struct`` derived here from
the very same field list: one declaration, two speeds, and a test that proves they agree.
"""

from __future__ import annotations

import struct
from typing import Any, Sequence, Tuple

import construct as c


class FixedLayout:
    """A big-endian record of fixed-size integer fields.

    ``schema`` is the construct Struct; ``fast`` is a ``struct.Struct`` derived from the same fields, so
    ``fast.pack(*values)`` produces exactly ``schema.build(dict(zip(names, values)))``.
    """

    def __init__(self, *fields: Tuple[str, c.Construct]) -> None:
        self.names: Tuple[str, ...] = tuple(name for name, _ in fields)
        self.schema = c.Struct(*(name / con for name, con in fields))
        fmt = ">"
        for name, con in fields:
            fmtstr = getattr(con, "fmtstr", None)
            if not fmtstr or fmtstr[0] not in "<>=!":
                raise TypeError(f"field {name!r} is not a fixed-size integer construct")
            if fmtstr[0] != ">":
                raise TypeError(f"field {name!r} is not big-endian")
            fmt += fmtstr[1:]
        self.fast = struct.Struct(fmt)
        self.size: int = self.fast.size
        self.pack = self.fast.pack
        self.pack_into = self.fast.pack_into
        self.unpack = self.fast.unpack
        self.unpack_from = self.fast.unpack_from

    def as_dict(self, values: Sequence[Any]) -> dict:
        """Map a tuple from ``unpack`` to field names (for tests and diagnostics, not hot paths)."""
        return dict(zip(self.names, values))
