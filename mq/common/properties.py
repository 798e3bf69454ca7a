"""java.util.Properties text, the format of ``broker.conf``, ``namesrv.properties`` and config RPC bodies.

Read with the maintained ``javaproperties`` package, as ``Properties.load`` reads it: ``key=value``,
``key: value`` and ``key value``, ``#`` and ``!`` comments, lines continued by a trailing backslash, and
escapes (``\\t``, ``\\uXXXX``, ``\\=``...). A later line wins over an earlier one with the same key.
"""

from __future__ import annotations

from typing import Dict, Mapping

import javaproperties


def parse_properties(text: str) -> Dict[str, str]:
    """The settings of Java properties text; ValueError on a malformed ``\\u`` escape."""
    return javaproperties.loads(text)


def format_properties(values: Mapping[str, object], escaped: bool = False) -> str:
    """``key=value`` lines, sorted, booleans written as Java does.

    Plain by default, byte for byte what RocketMQ's ``MixAll.properties2String`` puts in a config RPC body;
    ``escaped`` writes what ``Properties.store`` would (``\\:``, ``\\\\``, ``\\uXXXX``), for a file read back
    here, so that any value survives the round trip."""
    lines = []
    for key in sorted(values):
        value = values[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        if escaped:
            lines.append(javaproperties.join_key_value(key, str(value)))
        else:
            lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"
