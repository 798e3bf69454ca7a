"""A reader for fastjson's admin bodies, whose maps may be keyed by JSON objects.

``ConsumeStats``, ``TopicStatsTable`` and ``ResetOffsetBody`` are ``Map<MessageQueue, V>`` in Java, and fastjson
writes them with the ``MessageQueue`` itself as the key: ``{{"brokerName":"b","queueId":0,"topic":"T"}:{...}}``.
Python dicts cannot hold dicts as keys, so such a map is read as an ``ObjectKeyMap``: a list of
``(key, value)`` pairs in document order. Maps with string keys, or the unquoted integer keys fastjson also
writes (``{0:"addr"}``, read with the key as a string, like ``mq.common.fastjson.loads``), come back as dicts.
"""

from __future__ import annotations

import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, List, Tuple, Union

_WS = " \t\r\n"
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_LITERALS = (("true", True), ("false", False), ("null", None))


class ObjectKeyMap(List[Tuple[Any, Any]]):
    """A fastjson map whose keys are objects: ``(key, value)`` pairs in document order."""


class JsonKeysError(ValueError):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at character {pos}")
        self.pos = pos


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        text, pos, n = self.text, self.pos, len(self.text)
        while pos < n and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise JsonKeysError(f"expected {ch!r}", self.pos)
        self.pos += 1

    def value(self) -> Any:
        ch = self.peek()
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.array()
        if ch == '"':
            return self.string()
        for word, result in _LITERALS:
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return result
        return self.number()

    def string(self) -> str:
        text, end = scanstring(self.text, self.pos + 1, True)
        self.pos = end
        return text

    def number(self) -> Union[int, float]:
        m = _NUMBER.match(self.text, self.pos)
        if m is None or not m.group(0):
            raise JsonKeysError("expected a value", self.pos)
        self.pos = m.end()
        return float(m.group(0)) if m.group(1) or m.group(2) else int(m.group(0))

    def array(self) -> list:
        self.expect("[")
        out: list = []
        if self.peek() == "]":
            self.pos += 1
            return out
        while True:
            out.append(self.value())
            ch = self.peek()
            self.pos += 1
            if ch == "]":
                return out
            if ch != ",":
                raise JsonKeysError("expected ',' or ']'", self.pos - 1)

    def key(self) -> Any:
        ch = self.peek()
        if ch == '"':
            return self.string()
        if ch == "{":
            return self.obj()
        if ch == "-" or ch.isdigit():
            return str(self.number())  # fastjson's unquoted integer key, read as its text
        raise JsonKeysError("expected a map key", self.pos)

    def obj(self) -> Union[dict, ObjectKeyMap]:
        self.expect("{")
        pairs: List[Tuple[Any, Any]] = []
        if self.peek() == "}":
            self.pos += 1
            return {}
        while True:
            key = self.key()
            self.expect(":")
            pairs.append((key, self.value()))
            ch = self.peek()
            self.pos += 1
            if ch == "}":
                break
            if ch != ",":
                raise JsonKeysError("expected ',' or '}'", self.pos - 1)
        if any(isinstance(k, (dict, ObjectKeyMap)) for k, _ in pairs):
            return ObjectKeyMap(pairs)
        return dict(pairs)


def loads(data: "str | bytes") -> Any:
    """Parse standard JSON or fastjson output, object-keyed maps included (see the module text)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    reader = _Reader(data)
    try:
        result = reader.value()
    except RecursionError:
        # Nesting past Python's stack (a client's running-info reply, a broker's answer): bad input like any
        # other, as in ``fastjson.loads``, not an error its callers do not expect.
        raise JsonKeysError("nested too deeply", reader.pos) from None
    reader.skip_ws()
    if reader.pos != len(data):
        raise JsonKeysError("extra data after the value", reader.pos)
    return result
