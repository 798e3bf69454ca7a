"""Service configuration as attrs classes whose fields carry the original RocketMQ property names.

A config can be filled from defaults, a properties file with the original key names (``broker.conf``),
command-line options, and at run time from the config-update RPCs, with one conversion and validation path.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Mapping, Optional

import attr

from mq.common.properties import parse_properties


def setting(key: str, default: Any, doc: str = "", runtime: bool = False, choices: Optional[tuple] = None) -> Any:
    """Declare a setting: ``key`` is its RocketMQ property name; ``runtime`` allows changing it live."""
    return attr.ib(default=default, metadata={"key": key, "doc": doc, "runtime": runtime, "choices": choices})


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


def convert_value(field: attr.Attribute, raw: Any, key: Optional[str] = None) -> Any:
    """A setting's value from a properties string (or an already typed value), by the field's default type.

    Booleans are ``true``/``false`` (``1``/``0`` too), enums their names in any case; anything else that does
    not parse raises ValueError naming the key.
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
            raise ValueError(f"{key}: {raw!r} is not one of {names}") from None
    elif kind is bool:
        if isinstance(raw, bool):
            value = raw
        else:
            low = str(raw).strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError(f"{key}: {raw!r} is not true or false")
            value = low in ("true", "1")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"{key}: {raw!r} is not an integer") from None
    elif kind is float:
        try:
            value = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
        except ValueError:
            raise ValueError(f"{key}: {raw!r} is not a number") from None
    else:
        value = str(raw).strip()
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
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

    @classmethod
    def from_properties_file(cls, path: str, **overrides: Any) -> "ServiceConfig":
        with open(path, encoding="utf-8") as f:
            props = parse_properties(f.read())
        config = cls()
        config.update_from_properties(props)
        for name, value in overrides.items():
            setattr(config, name, value)
        return config

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
                raise ValueError(f"unknown setting {key!r}")
            if runtime and not field.metadata.get("runtime"):
                raise ValueError(f"setting {key!r} cannot be changed while running")
            changes[field.name] = convert_value(field, raw, key)
        for name, value in changes.items():
            setattr(self, name, value)
        return {fields_key: getattr(self, f.name) for fields_key, f in fields.items() if f.name in changes}

    def as_properties(self) -> Dict[str, Any]:
        return {key: getattr(self, f.name) for key, f in self.by_key().items()}

    def set_option(self, name: str, raw: Any) -> None:
        """Set a field from a command-line string, converted and checked like a properties value."""
        field = attr.fields_dict(type(self))[name]
        setattr(self, name, convert_value(field, raw))
