"""JSON in the dialect of fastjson, the library the Java NameServer and broker write with.

Two things differ from standard JSON: maps with integer keys are written with the keys unquoted
(``{0:"10.0.0.1:10911"}``), and maps keyed by objects (``MessageQueue``) are written with JSON objects as
keys. Old clients (C++ and Node among them) expect the first form in route data, so ``dumps`` produces it
unless asked for standard JSON; ``loads`` reads both forms of integer keys.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable, List

_str = encode_basestring_ascii


def _encode(obj: Any, standard: bool, out: List[str]) -> None:
    t = type(obj)
    if t is str:
        out.append(_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif t is int or t is float:
        out.append(repr(obj) if t is float else str(obj))
    elif t is dict:
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            kt = type(key)
            if kt is str:
                out.append(_str(key))
            elif kt is int or isinstance(key, int):
                out.append(f'"{int(key)}"' if standard else str(int(key)))
            else:
                _encode(key, standard, out)
            out.append(":")
            _encode(value, standard, out)
        out.append("}")
    elif t is list or t is tuple or t is set or t is frozenset:
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, standard, out)
        out.append("]")
    elif hasattr(obj, "to_json"):
        _encode(obj.to_json(), standard, out)
    elif isinstance(obj, int):  # IntEnum and friends
        out.append(str(int(obj)))
    elif isinstance(obj, str):
        out.append(_str(str.__str__(obj)))  # the text itself, not a str-Enum's "Cls.NAME"
    elif isinstance(obj, dict):  # OrderedDict, defaultdict
        _encode(dict(obj), standard, out)
    elif isinstance(obj, (list, tuple)):
        _encode(list(obj), standard, out)
    else:
        raise TypeError(f"cannot encode {t.__name__} as JSON")


def dumps(obj: Any, standard: bool = False) -> str:
    """Compact JSON; integer map keys unquoted unless ``standard``. Objects may define ``to_json()``."""
    out: List[str] = []
    _encode(obj, standard, out)
    return "".join(out)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


_c_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=_plain).encode


def dumps_string_keyed(obj: Any) -> str:
    """``dumps(obj)`` for data whose maps all have string keys, by the C encoder: the same text, many times
    faster on big tables (state files of thousands of topics or groups)."""
    return _c_dumps(obj)


def dumps_bytes(obj: Any, standard: bool = False) -> bytes:
    return dumps(obj, standard).encode("ascii")


# The unquoted integer key fastjson writes: ``{`` or ``,``, the digits, then ``:``. Blind to strings, so the
# quoted text is checked by parsing it (see ``_quote_keys_fast``); the empty groups are where the quotes go.
_BARE_KEY = re.compile(r"([{,]\s*)()(-?\d+)()(?=\s*:)")
# A bare key or a whole string (skipped): the string-aware form, for text whose strings hold key-like text.
_KEY_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|([{,]\s*)(-?\d+)(?=\s*:)', re.S)
# Text whose every string is closed: only then does ``_KEY_OR_STRING`` match each string whole.
_CLOSED_STRINGS = re.compile(r'(?:[^"]|"(?:[^"\\]|\\.)*")*', re.S)
# How CPython and PyPy (which adds " at char") begin the message for a map key that is not a string, at the
# key's first character.
_KEY_ERRORS = ("Expecting property name enclosed in double quotes", "Key name must be string")
#: Text up to this long whose fast quoting fails is tried once more by the string-aware scan, which costs a
#: Python call per string; longer text is refused (fastjson's own output never needs it: no key-like strings).
STRING_AWARE_LIMIT = 1 << 20


def _quote_keys_fast(text: str) -> str:
    """Quote every ``{0:``/``,0:`` in one C-level pass, strings or not. A quote put inside a string ends it
    right before a digit, which no JSON allows, so if the result parses it is the right one."""
    parts = _BARE_KEY.split(text)
    n = (len(parts) - 1) // 5
    parts[2::5] = ['"'] * n
    parts[4::5] = ['"'] * n
    return "".join(parts)


def _quote_string_aware(match: "re.Match[str]") -> str:
    return match[0] if match[1] is None else f'{match[1]}"{match[2]}"'


def _quote_bare_keys(text: str) -> str:
    """Quote the unquoted integer map keys of fastjson's output, leaving string contents alone (linear)."""
    if _CLOSED_STRINGS.fullmatch(text) is None:
        return text  # an unclosed string: invalid whatever the keys
    return _KEY_OR_STRING.sub(_quote_string_aware, text)


def _bare_key_error(text: str, error: json.JSONDecodeError) -> bool:
    """Whether the parser stopped at what may be fastjson's unquoted integer key: a map key starting with a
    digit or minus. Anything else is refused at once, not rescanned (``{,,,…`` of 16 MiB took 5 s)."""
    return error.msg.startswith(_KEY_ERRORS) and error.pos < len(text) and text[error.pos] in "-0123456789"


def loads(data: "str | bytes", object_hook: Callable = None) -> Any:
    """Parse standard JSON or fastjson's unquoted-integer-key dialect (keys come back as strings)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    try:
        try:
            return json.loads(data, object_hook=object_hook)
        except json.JSONDecodeError as e:
            if not _bare_key_error(data, e):
                raise
        try:
            return json.loads(_quote_keys_fast(data), object_hook=object_hook)
        except json.JSONDecodeError:
            if len(data) > STRING_AWARE_LIMIT:
                raise
        return json.loads(_quote_bare_keys(data), object_hook=object_hook)
    except RecursionError:
        # Deeply nested input exhausts the parser's stack: bad input like any other, not a crash.
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as e:
        # Our own words, from the position only: the decoder's message quotes the offending character, and
        # PyPy 7.3 can build that message as a malformed string that crashes whoever formats it later.
        raise ValueError(f"not valid JSON at line {e.lineno} column {e.colno} (char {e.pos})") from None
