"""The remoting frame and both header serializations, as construct schemas with derived fast forms.

Frame (wire reference §1.1)::

    i32 length          4 + header length + body length (it does not count itself)
    u8  serialize type  0 = JSON, 1 = ROCKETMQ
    u24 header length
    header
    body

The schemas (``FRAME``, ``ROCKETMQ_HEADER``) are the declaration; ``encode_command`` and ``decode_frame``
are the hot-path forms derived from them (``FixedLayout`` for the fixed parts), proven byte-identical by the
property tests.
"""

from __future__ import annotations

import json
import platform
import struct
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Dict, Optional

import construct as c

from mq.common.layout import FixedLayout
from mq.remoting.codes import LanguageCode, SerializeType
from mq.remoting.command import RemotingCommand

#: Largest frame accepted by default, as the Java decoder's ``frameMaxLength`` (16 MiB).
DEFAULT_MAX_FRAME_LENGTH = 16 * 1024 * 1024

FRAME = c.Struct(
    "length" / c.Int32sb,
    "serialize_type" / c.Int8ub,
    "header_length" / c.Int24ub,
    "header" / c.Bytes(c.this.header_length),
    "body" / c.Bytes(c.this.length - 4 - c.this.header_length),
)

#: The fast form of the frame's fixed prefix: the length and the (serialize type, header length) word.
FRAME_PREFIX = FixedLayout(("length", c.Int32sb), ("header_word", c.Int32ub))
FRAME_LENGTH = FixedLayout(("length", c.Int32sb))

ROCKETMQ_HEADER_FIXED = FixedLayout(
    ("code", c.Int16sb),
    ("language", c.Int8ub),
    ("version", c.Int16sb),
    ("opaque", c.Int32sb),
    ("flag", c.Int32sb),
)

ROCKETMQ_HEADER = c.Struct(
    "code" / c.Int16sb,
    "language" / c.Int8ub,
    "version" / c.Int16sb,
    "opaque" / c.Int32sb,
    "flag" / c.Int32sb,
    "remark" / c.PascalString(c.Int32sb, "utf8"),
    "ext_fields"
    / c.Prefixed(
        c.Int32sb,
        c.GreedyRange(
            c.Struct(
                "key" / c.PascalString(c.Int16sb, "utf8"),
                "value" / c.PascalString(c.Int32sb, "utf8"),
            )
        ),
    ),
)

_I16 = FixedLayout(("n", c.Int16sb))
_I32 = FixedLayout(("n", c.Int32sb))

_LANGUAGE_NAMES = {int(lang): lang.name for lang in LanguageCode}
_LANGUAGE_BY_NAME = {lang.name: int(lang) for lang in LanguageCode}


class FrameError(ValueError):
    """A frame or header that cannot be decoded: the connection that sent it is closed."""


# -- JSON header ---------------------------------------------------------------------------------------

try:  # CPython's C encoder; PyPy's json.encoder has no such name
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - PyPy
    c_make_encoder = None

_PYPY = platform.python_implementation() == "PyPy"

if _PYPY or c_make_encoder is None:
    # PyPy has no C encoder and its ``scan_once`` is pure Python, but ``json.loads``/``dumps`` with
    # default arguments take its fast built-in paths.
    _json_scan = None
    _json_dumps = json.JSONEncoder(separators=(",", ":")).encode

    def _encode_json(value: dict) -> str:
        return _json_dumps(value)

else:
    _json_scan = json.JSONDecoder().scan_once
    _c_encode = c_make_encoder(None, None, encode_basestring_ascii, None, ":", ",", False, False, True)

    def _encode_json(value: dict) -> str:
        return "".join(_c_encode(value, 0))


def _parse_json(text: str) -> object:
    """One JSON value, with nothing but whitespace around it."""
    if _json_scan is not None:
        try:
            value, end = _json_scan(text, 0)
        except StopIteration:
            pass  # leading whitespace, or not JSON: let ``json.loads`` decide and explain
        else:
            if end == len(text) or not text[end:].strip():
                return value
            raise ValueError(f"trailing data at offset {end}")
    return json.loads(text)


def _ext_value(value: object) -> Optional[str]:
    """fastjson's reading of an ``extFields`` value into ``Map<String,String>``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return None
    # int()/float()/str.__str__ rather than str(): an IntEnum's str() is "Cls.NAME" before Python 3.11.
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return str.__str__(value)
    return json.dumps(value, separators=(",", ":"))


def _string_ext(ext: Dict[str, object]) -> Dict[str, str]:
    """``ext`` with every value a string, as fastjson reads ``Map<String,String>`` and every client
    expects (``4`` → ``"4"``, ``True`` → ``"true"``, None dropped)."""
    for value in ext.values():
        if type(value) is not str:
            break
    else:
        return ext  # the common case: every value already a string
    out = {}
    for key, value in ext.items():
        if type(value) is not str:
            value = _ext_value(value)
            if value is None:
                continue
        out[key if type(key) is str else str(key)] = value
    return out


def _normalise_ext(raw: object) -> Optional[Dict[str, str]]:
    if raw is None:
        return None
    if type(raw) is not dict:
        raise FrameError("extFields is not a JSON object")
    return _string_ext(raw)


def _int_field(header: dict, name: str, default: Optional[int] = None) -> int:
    value = header.get(name, default)
    if type(value) is not int:
        if value is None:
            raise FrameError(f"header field {name!r} is missing")
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise FrameError(f"header field {name!r} is not an integer: {value!r}")
    return value


def decode_json_header(data: bytes, body: bytes) -> RemotingCommand:
    try:
        header = _parse_json(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FrameError(f"JSON header does not parse: {e}") from None
    if type(header) is not dict:
        raise FrameError("JSON header is not an object")
    language = header.get("language", "JAVA")
    if type(language) is str:
        language = _LANGUAGE_BY_NAME.get(language, LanguageCode.OTHER)
    elif type(language) is not int:
        raise FrameError(f"header field 'language' is not valid: {language!r}")
    remark = header.get("remark")
    if remark is not None and type(remark) is not str:
        remark = str(remark)
    # The usual header has plain JSON integers: tested inline, ``_int_field`` only for the rest.
    code = header.get("code")
    if type(code) is not int:
        code = _int_field(header, "code")
    opaque = header.get("opaque", 0)
    if type(opaque) is not int:
        opaque = _int_field(header, "opaque", 0)
    flag = header.get("flag", 0)
    if type(flag) is not int:
        flag = _int_field(header, "flag", 0)
    version = header.get("version", 0)
    if type(version) is not int:
        version = _int_field(header, "version", 0)
    ext = header.get("extFields")
    return RemotingCommand(
        code, opaque, flag, remark, None if ext is None else _normalise_ext(ext), body, language, version,
        SerializeType.JSON,
    )


#: Each language's name as a JSON string, ready to paste into a header.
_LANGUAGE_JSON = {code: f'"{name}"' for code, name in _LANGUAGE_NAMES.items()}


def encode_json_header(cmd: RemotingCommand) -> bytes:
    """The header as fastjson writes it: compact, keys in alphabetical order, null fields left out.

    The fixed keys are pasted around the variable parts rather than built as a dict and encoded; only
    ``extFields`` and ``remark`` go through the JSON encoder. ``%d`` also writes IntEnums as plain numbers.
    """
    ext = cmd.ext_fields
    remark = cmd.remark
    text = '{"code":%d%s,"flag":%d,"language":%s,"opaque":%d%s,"serializeTypeCurrentRPC":"JSON","version":%d}' % (
        cmd.code,
        "" if ext is None else ',"extFields":' + _encode_json(_string_ext(ext)),
        cmd.flag,
        _LANGUAGE_JSON.get(cmd.language, '"OTHER"'),
        cmd.opaque,
        "" if remark is None else ',"remark":' + encode_basestring_ascii(remark),
        cmd.version,
    )
    return text.encode("ascii")


# -- ROCKETMQ binary header ----------------------------------------------------------------------------


def decode_rocketmq_header(data: bytes, body: bytes) -> RemotingCommand:
    size = len(data)
    fixed = ROCKETMQ_HEADER_FIXED.size
    if size < fixed + 8:
        raise FrameError(f"ROCKETMQ header of {size} bytes is shorter than its fixed part")
    try:
        code, language, version, opaque, flag = ROCKETMQ_HEADER_FIXED.unpack_from(data, 0)
        pos = fixed
        (remark_len,) = _I32.unpack_from(data, pos)
        pos += 4
        remark = None
        if remark_len:
            if remark_len < 0 or pos + remark_len > size:
                raise FrameError(f"ROCKETMQ header remark length {remark_len} is out of range")
            remark = data[pos : pos + remark_len].decode("utf-8")
            pos += remark_len
        (ext_len,) = _I32.unpack_from(data, pos)
        pos += 4
        ext = None
        if ext_len:
            end = pos + ext_len
            if ext_len < 0 or end > size:
                raise FrameError(f"ROCKETMQ header extFields length {ext_len} is out of range")
            ext = {}
            while pos < end:
                (key_len,) = _I16.unpack_from(data, pos)
                pos += 2
                if key_len < 0 or pos + key_len > end:
                    raise FrameError("ROCKETMQ header key length is out of range")
                key = data[pos : pos + key_len].decode("utf-8")
                pos += key_len
                (val_len,) = _I32.unpack_from(data, pos)
                pos += 4
                if val_len < 0 or pos + val_len > end:
                    raise FrameError("ROCKETMQ header value length is out of range")
                value = data[pos : pos + val_len].decode("utf-8")
                pos += val_len
                if key_len and val_len:
                    ext[key] = value
    except (UnicodeDecodeError, struct.error) as e:
        raise FrameError(f"ROCKETMQ header does not parse: {e}") from None
    return RemotingCommand(
        code, opaque, flag, remark, ext, body, language, version, SerializeType.ROCKETMQ
    )


def encode_rocketmq_header(cmd: RemotingCommand) -> bytes:
    parts = [ROCKETMQ_HEADER_FIXED.pack(cmd.code, cmd.language, cmd.version, cmd.opaque, cmd.flag)]
    remark = cmd.remark.encode("utf-8") if cmd.remark else b""
    parts.append(_I32.pack(len(remark)))
    parts.append(remark)
    entries = []
    if cmd.ext_fields:
        for key, value in _string_ext(cmd.ext_fields).items():
            if key is None:
                continue
            k = key.encode("utf-8")
            v = value.encode("utf-8")
            entries.append(_I16.pack(len(k)) + k + _I32.pack(len(v)) + v)
    ext = b"".join(entries)
    parts.append(_I32.pack(len(ext)))
    parts.append(ext)
    return b"".join(parts)


# -- whole frames --------------------------------------------------------------------------------------

_pack_prefix = FRAME_PREFIX.pack


def encode_command(cmd: RemotingCommand) -> bytes:
    """The complete frame for ``cmd``, in its own serialization type."""
    if cmd.frame is not None:
        return cmd.frame
    if cmd.serialize_type == SerializeType.JSON:
        header = encode_json_header(cmd)
    else:
        header = encode_rocketmq_header(cmd)
    body = cmd.body or b""
    hlen = len(header)
    return b"".join(
        (_pack_prefix(4 + hlen + len(body), (cmd.serialize_type << 24) | hlen), header, body)
    )


class ResponseTemplate:
    """The JSON-header frame of a response that differs from one answer to the next only in its ``opaque`` and
    some ``extFields`` values (a send's msgId, queue id and queue offset): encoded once by ``encode_json_header``
    with markers in those places, so each answer formats three or four values into one string.

    ``ext`` gives every extFields entry in order; None marks a variable one. Variable values must be plain
    JSON-safe ASCII (digits, hex): they are pasted unescaped. A fixed value with a NUL gets no template
    (``frame`` is then None and the caller encodes as usual).
    """

    __slots__ = ("_text",)

    _OPAQUE = -7_777_777_777_777  # out of the i32 range of a real opaque

    def __init__(self, code: int, flag: int, ext: Dict[str, Optional[str]], version: int) -> None:
        fixed = [v for v in ext.values() if v is not None]
        self._text: Optional[str] = None
        if any("\x00" in v for v in fixed):
            return
        marked = {k: (f"\x00{i}" if v is None else v) for i, (k, v) in enumerate(ext.items())}
        cmd = RemotingCommand(code, self._OPAQUE, flag, None, marked, b"", LanguageCode.JAVA, version)
        text = encode_json_header(cmd).decode("ascii").replace("%", "%%")
        text = text.replace(f'"opaque":{self._OPAQUE}', '"opaque":%d')
        for i, v in enumerate(ext.values()):
            if v is None:
                text = text.replace(encode_basestring_ascii(f"\x00{i}"), '"%s"')
        self._text = text

    def frame(self, opaque: int, *values: str) -> Optional[bytes]:
        """The frame with ``values`` in the variable places, in order (None if there is no template)."""
        if self._text is None:
            return None
        header = (self._text % (*values, opaque)).encode("ascii")  # fastjson's order: extFields before opaque
        hlen = len(header)
        return _pack_prefix(4 + hlen, hlen) + header  # header word: serialize type JSON (0) << 24 | length


def decode_frame(serialize_type: int, header: bytes, body: bytes) -> RemotingCommand:
    """A command from a frame's parts (the framing layer has already checked the lengths)."""
    if serialize_type == SerializeType.JSON:
        return decode_json_header(header, body)
    if serialize_type == SerializeType.ROCKETMQ:
        return decode_rocketmq_header(header, body)
    raise FrameError(f"unknown serialize type {serialize_type}")


def decode_command(frame: bytes) -> RemotingCommand:
    """A command from one whole frame, length prefix included (for tests and tools)."""
    if len(frame) < FRAME_PREFIX.size:
        raise FrameError("frame shorter than its prefix")
    length, word = FRAME_PREFIX.unpack_from(frame, 0)
    if length != len(frame) - 4:
        raise FrameError(f"frame length {length} does not match {len(frame) - 4} bytes")
    hlen = word & 0xFFFFFF
    if hlen > length - 4:
        raise FrameError(f"header length {hlen} runs past the frame end")
    return decode_frame(word >> 24, frame[8 : 8 + hlen], frame[8 + hlen :])
