"""Service configuration as attrs classes whose fields carry the original RocketMQ property names.

A config can be filled from defaults, a properties file with the original key names (``broker.conf``),
command-line options, and at run time from the config-update RPCs, with one conversion and validation path.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import attr

from mq.common.properties import parse_properties


def setting(key: str, default: Any, doc: str = "", runtime: bool = False, choices: Optional[tuple] = None) -> Any:
    """Declare a setting: ``key`` is its RocketMQ property name; ``runtime`` allows changing it live."""
    return attr.ib(default=default, metadata={"key": key, "doc": doc, "runtime": runtime, "choices": choices})


def _convert(field: attr.Attribute, raw: Any) -> Any:
    kind = type(field.default)
    if isinstance(raw, str):
        text = raw.strip()
        if kind is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError(f"{field.metadata['key']}: {raw!r} is not true or false")
            value: Any = low in ("true", "1")
        elif kind is int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{field.metadata['key']}: {raw!r} is not an integer") from None
        elif kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{field.metadata['key']}: {raw!r} is not a number") from None
        else:
            value = text
    else:
        value = raw
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise ValueError(f"{field.metadata['key']}: {value!r} is not one of {', '.join(map(str, choices))}")
    return value


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
            changes[field.name] = _convert(field, raw)
        for name, value in changes.items():
            setattr(self, name, value)
        return {fields_key: getattr(self, f.name) for fields_key, f in fields.items() if f.name in changes}

    def as_properties(self) -> Dict[str, Any]:
        return {key: getattr(self, f.name) for key, f in self.by_key().items()}

    def set_option(self, name: str, raw: Any) -> None:
        """Set a field from a command-line string, converted and checked like a properties value."""
        field = attr.fields_dict(type(self))[name]
        setattr(self, name, _convert(field, raw))
