"""java.util.Properties text, the format of ``broker.conf``, ``namesrv.properties`` and config RPC bodies."""

from __future__ import annotations

from typing import Dict, Mapping


def parse_properties(text: str) -> Dict[str, str]:
    """``key=value`` or ``key: value`` lines; ``#`` and ``!`` start comments; blank lines skipped."""
    out: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        for i, ch in enumerate(line):
            if ch in "=:":
                out[line[:i].strip()] = line[i + 1 :].strip()
                break
        else:
            out[line] = ""
    return out


def format_properties(values: Mapping[str, object]) -> str:
    """``key=value`` lines, sorted, booleans written as Java does."""
    lines = []
    for key in sorted(values):
        value = values[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"
