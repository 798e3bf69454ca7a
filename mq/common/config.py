"""Service configuration as attrs classes whose fields carry the original RocketMQ property names.

A config can be filled from defaults, a properties file with the original key names (``broker.conf``),
command-line options, and at run time from the config-update RPCs, with one conversion and validation path.
"""

from __future__ import annotations

import difflib
import enum
import math
from typing import AbstractSet, Any, Callable, Dict, List, Mapping, NoReturn, Optional, Tuple, Union

import attr
from twisted.logger import Logger

from mq.common.rocketmq_keys import NOT_IMPLEMENTED

log = Logger()


@attr.s(frozen=True, slots=True)
class Range:
    """The values a number setting may take, both ends included (None: unbounded on that side)."""

    low: Optional[float] = attr.ib()
    high: Optional[float] = attr.ib()
    unit: str = attr.ib(default="")

    def __str__(self) -> str:
        text = f"{_number(self.low) if self.low is not None else ''}..{_number(self.high) if self.high is not None else ''}"
        return f"{text} ({self.unit})" if self.unit else text

    def check(self, key: str, value: float, when: str = "") -> None:
        """Raise ValueError naming ``key`` and this range when ``value`` is outside it (or not finite)."""
        if (not math.isfinite(value) or (self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)):
            raise ValueError(f"{key}: {_number(value)} is outside {self}{when}")


def within(low: Optional[float], high: Optional[float], unit: str = "") -> Range:
    """``within(100, 3_600_000, "ms")``: the range of a number setting."""
    return Range(low, high, unit)


#: Common ranges: TCP ports (0 where 0 means "off"), and a percentage.
PORT = within(1, 65535)
PORT_OR_OFF = within(0, 65535, "0 = off")
PERCENT = within(0, 100, "%")

#: ``runtime`` of a setting: False (fixed while running), True (changeable live, within its range), or a
#: narrower Range that a live change must respect (a floor a remote peer may not go under, say).
Runtime = Union[bool, Range]


def setting(key: str, default: Any, doc: str = "", runtime: Runtime = False, choices: Optional[tuple] = None,
            range: Optional[Range] = None) -> Any:  # noqa: A002 - the natural name of the metadata entry
    """Declare a setting: ``key`` is its RocketMQ property name; ``runtime`` allows changing it live;
    ``range`` bounds a number (files, options and live changes alike)."""
    return attr.ib(default=default, metadata={"key": key, "doc": doc, "runtime": runtime, "choices": choices,
                                              "range": range})


def tunable(default: Any, range: Optional[Range] = None, runtime: Runtime = False,  # noqa: A002
            choices: Optional[tuple] = None, check: Optional[Callable[[Any], None]] = None) -> Any:
    """A field of a config class whose key is its camelCase name: its range (or a ``check`` raising
    ValueError) and whether it may change while running, declared next to it (``default`` may be an
    ``attr.Factory``)."""
    metadata = {"runtime": runtime, "choices": choices, "range": range, "check": check}
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return attr.ib(factory=default.factory, metadata=metadata)
    return attr.ib(default=default, metadata=metadata)


def is_runtime(field: attr.Attribute) -> bool:
    return bool(field.metadata.get("runtime"))


def check_range(field: attr.Attribute, value: Any, key: str, live: bool = False) -> None:
    """Refuse a number outside the field's range (and, for a live change, its runtime range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bounds = field.metadata.get("range")
    if bounds is not None:
        bounds.check(key, value)
    runtime = field.metadata.get("runtime")
    if live and isinstance(runtime, Range):
        runtime.check(key, value, " when changed while running")


def refuse_start(service: str, error: object) -> NoReturn:
    """Stop a ``twistd`` start on a bad setting: one line on stderr and exit status 1. (A UsageError would
    print every option above the reason, and some Twisted releases exit 0 after one.)"""
    raise SystemExit(f"{service}: {' '.join(str(error).split())}")


#: Longest text parsed as a number, and longest part of a refused value quoted back in a remark or a log line.
MAX_NUMBER_TEXT = 64
MAX_SHOWN = 80


def shown(raw: Any) -> str:
    """``raw`` quoted for a message, cut short when long (a peer chooses its length)."""
    text = repr(raw)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(str(raw))} characters)"


def unknown_setting(key: str, known: AbstractSet[str]) -> str:
    """``unknown setting 'brokerNmae' (did you mean brokerName?)``: the nearest known key is most often the
    one a typo meant."""
    near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    if not near:  # a case slip (listenport) scores low on plain similarity
        near = [k for k in sorted(known) if k.lower() == key.lower()][:1]
    return f"unknown setting {shown(key)}" + (f" (did you mean {near[0]}?)" if near else "")


def split_settings(props: Mapping[str, Any], known: AbstractSet[str],
                   ignored: AbstractSet[str]) -> Tuple[Dict[str, Any], List[str]]:
    """A config file's settings sorted out: (the ones this service uses, RocketMQ's keys it ignores).

    Raises ValueError, in one line, on the first key that is unknown (naming the nearest known key) or that
    turns on a RocketMQ feature mq does not have (naming the feature)."""
    used: Dict[str, Any] = {}
    dropped: List[str] = []
    for key, value in props.items():
        if key in known:
            used[key] = value
        elif key in ignored or (key in NOT_IMPLEMENTED and str(value).strip().lower() in ("", "false")):
            dropped.append(key)
        elif key in NOT_IMPLEMENTED:
            raise ValueError(f"{key}: mq does not implement {NOT_IMPLEMENTED[key]}; remove the key to start")
        else:
            raise ValueError(unknown_setting(key, known))
    return used, dropped


def file_settings(props: Mapping[str, Any], known: AbstractSet[str], ignored: AbstractSet[str],
                  source: str) -> Dict[str, Any]:
    """``split_settings`` for a file named ``source``: the refusal says where, the ignored keys are logged."""
    try:
        used, dropped = split_settings(props, known, ignored)
    except ValueError as e:
        raise ValueError(f"{e} (in {source})") from None
    if dropped:
        log.warn("{source}: RocketMQ settings with no effect in mq, ignored: {keys}", source=source,
                 keys=", ".join(sorted(dropped)))
    return used


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def camel(name: str, overrides: Optional[Mapping[str, str]] = None) -> str:
    """A field name's RocketMQ key: ``broker_cluster_name`` → ``brokerClusterName`` (or an override)."""
    if overrides and name in overrides:
        return overrides[name]
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def key_aliases(cls: type, overrides: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """RocketMQ key → field name for every field of an attrs class (camel case and the overrides)."""
    aliases = {camel(f.name): f.name for f in attr.fields(cls)}
    for name, key in (overrides or {}).items():
        aliases[key] = name
    return aliases


def default_of(field: attr.Attribute) -> Any:
    default = field.default
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return default


def convert_value(field: attr.Attribute, raw: Any, key: Optional[str] = None, live: bool = False) -> Any:
    """A setting's value from a properties string (or an already typed value), by the field's default type.

    Booleans are ``true``/``false`` (``1``/``0`` too), enums their names in any case; a number must lie in the
    field's declared range (``live``: also in its runtime range). Anything else raises ValueError naming the key.
    """
    key = key or field.metadata.get("key") or camel(field.name)
    default = default_of(field)
    kind = type(default)
    if isinstance(default, enum.Enum):
        if isinstance(raw, kind):
            return raw
        try:
            value: Any = kind(str(raw).strip().upper())
        except ValueError:
            names = ", ".join(str(m.value) for m in kind)
            raise ValueError(f"{key}: {shown(raw)} is not one of {names}") from None
    elif kind is bool:
        if isinstance(raw, bool):
            value = raw
        else:
            low = str(raw).strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError(f"{key}: {shown(raw)} is not true or false")
            value = low in ("true", "1")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            text = str(raw).strip()
            try:
                if len(text) > MAX_NUMBER_TEXT:  # int() of a long digit string takes quadratic time (Python < 3.11)
                    raise ValueError(text)
                value = int(text)
            except ValueError:
                raise ValueError(f"{key}: {shown(raw)} is not an integer") from None
    elif kind is float:
        try:
            value = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
        except ValueError:
            raise ValueError(f"{key}: {shown(raw)} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{key}: {shown(raw)} is not a finite number")
    else:
        value = str(raw).strip()
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise ValueError(f"{key}: {shown(value)} is not one of {', '.join(map(str, choices))}")
    check_range(field, value, key, live)
    check = field.metadata.get("check")
    if check is not None:
        try:
            check(value)
        except ValueError as e:
            raise ValueError(f"{key}: {str(e)[:MAX_SHOWN * 2]}") from None
    return value


def format_value(value: Any) -> str:
    """A setting as a properties value: Java's booleans, enum names, plain numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


class ServiceConfig:
    """Base for config classes made of ``setting`` fields."""

    __slots__ = ()

    @classmethod
    def by_key(cls) -> Dict[str, attr.Attribute]:
        return {f.metadata["key"]: f for f in attr.fields(cls) if "key" in f.metadata}

    def update_from_properties(self, props: Mapping[str, str], runtime: bool = False) -> Dict[str, Any]:
        """Apply ``key=value`` settings by their RocketMQ names; unknown keys are refused with a clear error.

        With ``runtime`` only settings declared changeable at run time are accepted. Nothing is applied
        unless every entry is valid. Returns the changes made.
        """
        fields = self.by_key()
        changes: Dict[str, Any] = {}
        for key, raw in props.items():
            field = fields.get(key)
            if field is None:
                raise ValueError(unknown_setting(key, fields.keys()))
            if runtime and not is_runtime(field):
                raise ValueError(f"setting {key!r} cannot be changed while running")
            changes[field.name] = convert_value(field, raw, key, live=runtime)
        for name, value in changes.items():
            setattr(self, name, value)
        return {fields_key: getattr(self, f.name) for fields_key, f in fields.items() if f.name in changes}

    def as_properties(self) -> Dict[str, Any]:
        return {key: getattr(self, f.name) for key, f in self.by_key().items()}

    def set_option(self, name: str, raw: Any) -> Any:
        """Set a field from a command-line string, converted and checked like a properties value; returns
        the value set."""
        field = attr.fields_dict(type(self))[name]
        value = convert_value(field, raw)
        setattr(self, name, value)
        return value
