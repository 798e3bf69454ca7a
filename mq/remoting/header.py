"""Typed custom headers: attrs classes mapped to ``extFields`` by their RocketMQ names.

A header class declares each field once with ``hfield`` (its wire name, its type, whether RocketMQ marks it
``@CFNotNull``, and for ``SEND_MESSAGE_V2`` its one-letter short name). Decoders and encoders are generated
from those declarations the first time a class is used, because this runs on every send and pull.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Type, TypeVar

import attr

from mq.common.hotcache import PYPY

H = TypeVar("H", bound="CommandHeader")


class HeaderFieldError(ValueError):
    """A required custom-header field is missing, or a field's value does not parse."""

    def __init__(self, header: str, field: str, reason: str) -> None:
        super().__init__(f"{header}: header field '{field}' {reason}")
        self.header = header
        self.field = field
        self.reason = reason


def hfield(
    wire: str,
    kind: type = str,
    required: bool = False,
    default: Any = None,
    short: Optional[str] = None,
    bits: int = 64,
) -> Any:
    """Declare a header field: ``wire`` is its ``extFields`` key, ``short`` its SEND_MESSAGE_V2 key.

    An ``int`` field is a Java ``long`` unless ``bits=32`` (a Java ``int``); a value out of that range is
    refused as Java's ``parseLong``/``parseInt`` refuse it.
    """
    return attr.ib(
        default=default,
        metadata={"wire": wire, "kind": kind, "required": required, "short": short, "bits": bits},
    )


def parse_bool(value: str) -> bool:
    """Java reads only ``true``; C++ sends ``1``: accept both spellings of each value."""
    if type(value) is not str:
        if value is True or value is False:
            return value
        raise ValueError(value)
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise ValueError(value)


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def _parse_int(value: str) -> int:
    # Java's parseInt/parseLong accept an optional sign and digits only.
    if type(value) is not str:
        if type(value) is int:  # a header built in-process rather than decoded from the wire
            return value
        raise ValueError(value)
    text = value.strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        raise ValueError(value)
    return int(text)


_KIND_NAMES = {str: "a string", int: "an integer", bool: "a boolean"}
#: The spellings of the small numbers most int fields carry (queue ids, flags, counts): one dict lookup
#: instead of the digit test, ``int`` and the range check. Every value fits a Java int.
_SMALL_INTS: Dict[object, int] = {str(i): i for i in range(1024)}


def _make_decoder(cls: type, use_short: bool) -> Callable[[Optional[Dict[str, str]]], Any]:
    lines = ["def decode(ext):", "    if ext is None: ext = {}", "    get = ext.get"]
    names = []
    for i, a in enumerate(attr.fields(cls)):
        meta = a.metadata
        key = meta["short"] if use_short and meta["short"] else meta["wire"]
        kind = meta["kind"]
        var = f"f{i}"
        names.append(var)
        lines.append(f"    v = get({key!r})")
        if meta["required"]:
            lines.append(f"    if v is None: raise HeaderFieldError(NAME, {key!r}, 'is missing')")
            lines.append(f"    {var} = v")
        else:
            lines.append(f"    {var} = DEFAULT{i} if v is None else v")
        if kind is not str:
            parser = "parse_int" if kind is int else "parse_bool"
            guard = "" if meta["required"] else "v is not None and "
            # The spellings every client sends ("12", "true") take an inline path; everything else goes
            # through the parser, which decides, with the same result for these spellings.
            if kind is int:
                if PYPY:  # the JIT's digit test and int() beat a table lookup there (0.33 against 0.41 µs a header)
                    lines.append("    if type(v) is str and v.isascii() and v.isdigit():")
                else:
                    lines.append("    n = SMALL.get(v) if type(v) is str else None")  # "0".."1023": in every range
                    lines.append("    if n is not None:")
                    lines.append(f"        {var} = n")
                    lines.append("    elif type(v) is str and v.isascii() and v.isdigit():")
                lines.append(f"        {var} = int(v)")
            else:
                lines.append("    if v == 'false' or v == 'true':")
                lines.append(f"        {var} = v == 'true'")
            lines.append(f"    elif {guard}True:")
            lines.append("        try:")
            lines.append(f"            {var} = {parser}(v)")
            lines.append("        except (ValueError, TypeError):")
            lines.append(
                f"            raise HeaderFieldError(NAME, {key!r}, "
                f"'is not {_KIND_NAMES[kind]}: ' + repr(v)) from None"
            )
            if kind is int:
                low, high = -(1 << (meta["bits"] - 1)), (1 << (meta["bits"] - 1)) - 1
                java = "an int" if meta["bits"] == 32 else "a long"
                lines.append(f"    if {guard}not {low} <= {var} <= {high}:")
                lines.append(
                    f"        raise HeaderFieldError(NAME, {key!r}, "
                    f"'is out of range for {java}: ' + repr(v))"
                )
    lines.append(f"    return CLS({', '.join(names)})")
    namespace: Dict[str, Any] = {
        "SMALL": _SMALL_INTS,
        "HeaderFieldError": HeaderFieldError,
        "NAME": cls.__name__,
        "CLS": cls,
        "parse_int": _parse_int,
        "parse_bool": parse_bool,
    }
    for i, a in enumerate(attr.fields(cls)):
        namespace[f"DEFAULT{i}"] = a.default
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the class's own declarations
    return namespace["decode"]


def _make_encoder(cls: type, use_short: bool) -> Callable[[Any], Dict[str, str]]:
    lines = ["def encode(self):", "    out = {}"]
    for a in attr.fields(cls):
        meta = a.metadata
        key = meta["short"] if use_short and meta["short"] else meta["wire"]
        kind = meta["kind"]
        lines.append(f"    v = self.{a.name}")
        if kind is str:
            conv = "v"
        elif kind is bool:
            conv = "('true' if v else 'false')"
        else:
            conv = "str(int(v))"  # not str(v): an IntEnum's str() is "Cls.NAME" before Python 3.11
        lines.append(f"    if v is not None: out[{key!r}] = {conv}")
    lines.append("    return out")
    namespace: Dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the class's own declarations
    return namespace["encode"]


class CommandHeader:
    """Base of typed headers. Subclasses are ``@attr.s(slots=True)`` classes whose fields use ``hfield``."""

    __slots__ = ()
    _codecs: Dict[type, tuple] = {}

    @classmethod
    def _codec(cls) -> tuple:
        codec = CommandHeader._codecs.get(cls)
        if codec is None:
            has_short = any(a.metadata.get("short") for a in attr.fields(cls))
            codec = (
                _make_decoder(cls, False),
                _make_encoder(cls, False),
                _make_decoder(cls, True) if has_short else None,
                _make_encoder(cls, True) if has_short else None,
            )
            CommandHeader._codecs[cls] = codec
        return codec

    @classmethod
    def decode(cls: Type[H], ext: Optional[Dict[str, str]]) -> H:
        """The header from a command's ``extFields``; raises ``HeaderFieldError`` naming a bad field."""
        return cls._codec()[0](ext)

    @classmethod
    def decode_short(cls: Type[H], ext: Optional[Dict[str, str]]) -> H:
        """The header from ``extFields`` that use the one-letter names of SEND_MESSAGE_V2."""
        decoder = cls._codec()[2]
        if decoder is None:
            raise TypeError(f"{cls.__name__} has no short field names")
        return decoder(ext)

    def encode(self) -> Dict[str, str]:
        """The ``extFields`` for this header: every value a string, absent fields left out."""
        return self._codec()[1](self)

    def encode_short(self) -> Dict[str, str]:
        encoder = self._codec()[3]
        if encoder is None:
            raise TypeError(f"{type(self).__name__} has no short field names")
        return encoder(self)
