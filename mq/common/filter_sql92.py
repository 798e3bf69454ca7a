"""SQL92 property filters (RocketMQ's ``MessageSelector.bySql``): parse once, evaluate per message.

The language is RocketMQ's subset of SQL92 conditional expressions over message properties:

* comparisons ``=``, ``<>`` (also ``!=``), ``>``, ``>=``, ``<``, ``<=``; ``[NOT] BETWEEN a AND b``;
  ``[NOT] IN ('x', 'y')``; ``IS [NOT] NULL``; ``AND``, ``OR``, ``NOT`` and parentheses;
* constants: integers and decimals (with a sign), strings in single quotes (``''`` is a quote), ``TRUE``,
  ``FALSE``, ``NULL``; identifiers are property names (``a``, ``TAGS``, ``my.prop``).

Property values are strings. Compared with a number, a value is read as a number (``a > 5`` holds for
``a=10``); one that is not a number makes the comparison unknown. A missing property is NULL: every
comparison with it is unknown, and so is its negation. Logic is three-valued, and a message matches only
when the whole expression is true. Keywords are case-insensitive.

``compile_sql92(text)`` raises ``Sql92Error`` with the position and what was expected; nothing a client
sends can raise anything else.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

EvalFn = Callable[[Mapping[str, str]], Any]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[lLdDfF]?)
  | (?P<str>'(?:[^']|'')*')
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$.]*)
  | (?P<op><>|!=|>=|<=|=|>|<|\(|\)|,|\+|-)
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"}
_COMPARISONS = {"=", "<>", "!=", ">", ">=", "<", "<="}


class Sql92Error(ValueError):
    """The expression is not valid: says where and why."""


class _Token:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind: str, value: Any, pos: int) -> None:
        self.kind, self.value, self.pos = kind, value, pos

    def describe(self) -> str:
        return "the end of the expression" if self.kind == "end" else repr(str(self.value))


def _tokenize(text: str) -> List[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise Sql92Error(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup
        raw = m.group()
        if kind == "num":
            digits = raw.rstrip("lLdDfF")
            value: Any = float(digits) if any(c in digits for c in ".eE") else int(digits)
            tokens.append(_Token("num", value, pos))
        elif kind == "str":
            tokens.append(_Token("str", raw[1:-1].replace("''", "'"), pos))
        elif kind == "ident":
            upper = raw.upper()
            tokens.append(_Token("kw", upper, pos) if upper in _KEYWORDS else _Token("ident", raw, pos))
        elif kind == "op":
            tokens.append(_Token("op", raw, pos))
        pos = m.end()
    tokens.append(_Token("end", None, len(text)))
    return tokens


# ------------------------------------------------------------------------------------------------ evaluation


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return None
    return None


def _equal(left: Any, right: Any) -> Optional[bool]:
    if left is None or right is None:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        lb = left if isinstance(left, bool) else str(left).strip().lower() == "true" if isinstance(left, str) else None
        rb = right if isinstance(right, bool) else str(right).strip().lower() == "true" if isinstance(right, str) else None
        return None if lb is None or rb is None else lb == rb
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    ln, rn = _number(left), _number(right)
    return None if ln is None or rn is None else ln == rn


def _order(op: str, left: Any, right: Any) -> Optional[bool]:
    ln, rn = _number(left), _number(right)
    if ln is None or rn is None:
        return None
    if op == ">":
        return ln > rn
    if op == ">=":
        return ln >= rn
    if op == "<":
        return ln < rn
    return ln <= rn


def _not(value: Optional[bool]) -> Optional[bool]:
    return None if value is None else not value


# ------------------------------------------------------------------------------------------------ parser


class _Parser:
    """Recursive descent; each method returns (evaluator, is boolean-valued)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _fail(self, expected: str) -> Sql92Error:
        t = self.tok
        return Sql92Error(f"expected {expected} at position {t.pos}, found {t.describe()}")

    def _accept_kw(self, word: str) -> bool:
        if self.tok.kind == "kw" and self.tok.value == word:
            self.i += 1
            return True
        return False

    def _expect_kw(self, word: str) -> None:
        if not self._accept_kw(word):
            raise self._fail(word)

    def _accept_op(self, op: str) -> bool:
        if self.tok.kind == "op" and self.tok.value == op:
            self.i += 1
            return True
        return False

    def parse(self) -> EvalFn:
        if self.tok.kind == "end":
            raise Sql92Error("the expression is empty")
        fn, boolean = self.or_expr()
        if self.tok.kind != "end":
            raise self._fail("AND, OR or the end of the expression")
        if not boolean:
            raise Sql92Error("the expression is a value, not a condition (compare it with something)")
        return fn

    def _condition(self, parsed: Tuple[EvalFn, bool], where: str) -> EvalFn:
        fn, boolean = parsed
        if not boolean:
            raise Sql92Error(f"{where} needs a condition, not a plain value")
        return fn

    def or_expr(self) -> Tuple[EvalFn, bool]:
        return self._junction("OR", self.and_expr, True)

    def and_expr(self) -> Tuple[EvalFn, bool]:
        return self._junction("AND", self.not_expr, False)

    def _junction(self, keyword: str, operand: Callable[[], Tuple[EvalFn, bool]], decisive: bool):
        """``a OR b`` (``decisive`` True) or ``a AND b`` (False) in SQL's three-valued logic: one operand equal
        to ``decisive`` decides; otherwise an unknown (None) operand makes the result unknown."""
        left = operand()
        while self._accept_kw(keyword):
            a = self._condition(left, keyword)
            b = self._condition(operand(), keyword)

            def junction(p, a=a, b=b, d=decisive):
                x = a(p)
                if x is d:
                    return d
                y = b(p)
                if y is d:
                    return d
                return None if x is None or y is None else not d

            left = (junction, True)
        return left

    def not_expr(self) -> Tuple[EvalFn, bool]:
        if self._accept_kw("NOT"):
            inner = self._condition(self.not_expr(), "NOT")
            return (lambda p: _not(inner(p))), True
        return self.comparison()

    def comparison(self) -> Tuple[EvalFn, bool]:
        left, left_bool = self.primary()
        t = self.tok
        if t.kind == "op" and t.value in _COMPARISONS:
            self.i += 1
            right, _ = self.primary()
            op = t.value
            if op == "=":
                return (lambda p: _equal(left(p), right(p))), True
            if op in ("<>", "!="):
                return (lambda p: _not(_equal(left(p), right(p)))), True
            return (lambda p: _order(op, left(p), right(p))), True
        if self._accept_kw("IS"):
            negate = self._accept_kw("NOT")
            self._expect_kw("NULL")
            if negate:
                return (lambda p: left(p) is not None), True
            return (lambda p: left(p) is None), True
        negate = self._accept_kw("NOT")
        if self._accept_kw("BETWEEN"):
            low, _ = self.primary()
            self._expect_kw("AND")
            high, _ = self.primary()

            def between(p):
                v = left(p)
                a, b = _order(">=", v, low(p)), _order("<=", v, high(p))
                if a is False or b is False:
                    return False
                return None if a is None or b is None else True

            return ((lambda p: _not(between(p))) if negate else between), True
        if self._accept_kw("IN"):
            if not self._accept_op("("):
                raise self._fail("'(' after IN")
            values = [self.literal()]
            while self._accept_op(","):
                values.append(self.literal())
            if not self._accept_op(")"):
                raise self._fail("',' or ')' in the IN list")

            def member(p):
                v = left(p)
                if v is None:
                    return None
                return any(_equal(v, x) for x in values)

            return ((lambda p: _not(member(p))) if negate else member), True
        if negate:
            raise self._fail("BETWEEN or IN after NOT")
        return left, left_bool

    def literal(self) -> Any:
        t = self.tok
        sign = 1
        if t.kind == "op" and t.value in ("+", "-"):
            sign = -1 if t.value == "-" else 1
            self.i += 1
            t = self.tok
            if t.kind != "num":
                raise self._fail("a number after the sign")
        if t.kind in ("num", "str"):
            self.i += 1
            return t.value * sign if t.kind == "num" else t.value
        if t.kind == "kw" and t.value in ("TRUE", "FALSE"):
            self.i += 1
            return t.value == "TRUE"
        raise self._fail("a constant (number, 'string', TRUE or FALSE)")

    def primary(self) -> Tuple[EvalFn, bool]:
        t = self.tok
        if self._accept_op("("):
            inner = self.or_expr()
            if not self._accept_op(")"):
                raise self._fail("')'")
            return inner
        if t.kind == "ident":
            self.i += 1
            name = t.value
            return (lambda p: p.get(name)), False
        if t.kind == "kw" and t.value == "NULL":
            self.i += 1
            return (lambda p: None), False
        if t.kind == "kw" and t.value in ("TRUE", "FALSE"):
            self.i += 1
            value = t.value == "TRUE"
            return (lambda p: value), True
        if t.kind in ("num", "str") or (t.kind == "op" and t.value in ("+", "-")):
            value = self.literal()
            return (lambda p: value), False
        raise self._fail("a property name, a constant or '('")


class Sql92Expression:
    """A compiled expression: ``matches(properties)`` is True only when the condition holds."""

    def __init__(self, text: str, fn: EvalFn) -> None:
        self.text = text
        self._fn = fn

    def matches(self, properties: Mapping[str, str]) -> bool:
        try:
            return self._fn(properties) is True
        except Exception:  # noqa: BLE001 - a filter never breaks a pull; the message just does not match
            return False

    def __repr__(self) -> str:
        return f"Sql92Expression({self.text!r})"


@lru_cache(maxsize=1024)
def compile_sql92(text: Optional[str]) -> Sql92Expression:
    """Parse ``text`` (cached: subscriptions repeat on every pull); raises Sql92Error."""
    if text is None or not str(text).strip():
        raise Sql92Error("invalid SQL92 expression: it is empty")
    if len(text) > 16384:
        raise Sql92Error("invalid SQL92 expression: longer than 16384 characters")
    try:
        return Sql92Expression(text, _Parser(text).parse())
    except RecursionError:
        raise Sql92Error(f"invalid SQL92 expression {text!r}: nested too deeply") from None
    except Sql92Error as e:
        raise Sql92Error(f"invalid SQL92 expression {text!r}: {e}") from None


def evaluate(text: str, properties: Dict[str, str]) -> bool:
    return compile_sql92(text).matches(properties)


class Sql92MessageFilter:
    """A store message filter (``mq.store.filter.MessageFilter``) for an SQL92 subscription: nothing to
    decide at the ConsumeQueue, the expression on the record's properties."""

    def __init__(self, expression: Sql92Expression) -> None:
        self.expression = expression

    def is_matched_by_consume_queue(self, tags_code: int) -> bool:
        return True

    def is_matched_by_commit_log(self, record: bytes) -> bool:
        from mq.common.message_record import record_properties

        return self.expression.matches(record_properties(record))
