"""Consumer monitors (rocketmq-dashboard's /monitor pages): per consumer group a least number of online consumers
(``minCount``) and a largest total lag (``maxDiffTotal``). rocketmq-dashboard stores them and leaves its alarm
task off; here the Consumers page marks, live, every group past either of its bounds (``alarm`` of
``GET consumers``). Kept in ``monitor.json`` beside the dashboard's day files (written whole through a temporary
file and a rename, as they change: a few KB at most), read at start; without a data directory, in memory only.
Bounded: at most ``MAX_MONITORS`` groups, a file over ``MAX_FILE_BYTES`` or not in shape is not read (logged).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from twisted.internet import defer
from twisted.logger import Logger

from mq.console.forms import BadRequest, Context, Form, route

log = Logger()

MAX_MONITORS = 1000
MAX_FILE_BYTES = 1 << 20
MAX_MIN_COUNT = 100_000
MAX_DIFF_TOTAL = 10**15


class Monitors:
    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        #: group → {"minCount": n, "maxDiffTotal": n}
        self.table: Dict[str, Dict[str, int]] = {}

    def load(self) -> None:
        if self.path is None or not os.path.exists(self.path):
            return
        try:
            if os.path.getsize(self.path) > MAX_FILE_BYTES:
                raise ValueError(f"more than {MAX_FILE_BYTES} bytes")
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
            table = {}
            for group, bounds in (data if isinstance(data, dict) else {}).items():
                count, diff = bounds.get("minCount"), bounds.get("maxDiffTotal")
                if not (isinstance(group, str) and type(count) is int and type(diff) is int
                        and 0 <= count <= MAX_MIN_COUNT and 0 <= diff <= MAX_DIFF_TOTAL):
                    raise ValueError(f"the monitor of {str(group)[:64]!r} is not two numbers in range")
                table[group] = {"minCount": count, "maxDiffTotal": diff}
            if len(table) > MAX_MONITORS or not isinstance(data, dict):
                raise ValueError(f"not an object of at most {MAX_MONITORS} groups")
        except (OSError, ValueError, AttributeError, RecursionError) as e:  # Recursion: nested past the stack
            kept = self.path + ".unreadable"
            try:  # the next change would save over it: the operator's monitors are kept beside
                os.replace(self.path, kept)
            except OSError:
                kept = "(could not be moved)"
            log.warn("console: consumer monitors {path} not read ({why}); the file is kept as {kept}",
                     path=self.path, why=e, kept=kept)
            return
        self.table = table

    def set(self, group: str, min_count: int, max_diff_total: int) -> None:
        """Set a group's bounds; ValueError when MAX_MONITORS other groups are monitored."""
        if group not in self.table and len(self.table) >= MAX_MONITORS:
            raise ValueError(f"{MAX_MONITORS} groups are monitored already")
        self.table[group] = {"minCount": min_count, "maxDiffTotal": max_diff_total}
        self._save()

    def delete(self, group: str) -> bool:
        found = self.table.pop(group, None) is not None
        if found:
            self._save()
        return found

    def alarms(self, row: dict) -> List[str]:
        """Why a ``consumerProgress`` row is past its group's bounds (empty: it is not, or is not monitored)."""
        bounds = self.table.get(row.get("group", ""))
        if bounds is None:
            return []
        out = []
        if row.get("count", 0) < bounds["minCount"]:
            out.append(f"{row.get('count', 0)} online, fewer than {bounds['minCount']}")
        if row.get("diffTotal", 0) > bounds["maxDiffTotal"]:
            out.append(f"lag {row.get('diffTotal', 0)}, more than {bounds['maxDiffTotal']}")
        return out

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path + ".tmp"
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(self.table, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            log.error("console: cannot write the consumer monitors {path}: {why}", path=self.path, why=e)


# -- routes ------------------------------------------------------------------------------------------------


def _monitors(ctx: Context) -> Monitors:
    if ctx.monitors is None:
        raise BadRequest("consumer monitors are off")
    return ctx.monitors


@route("monitor")
def monitor_list(ctx: Context, form: Form):
    return defer.succeed(dict(sorted(_monitors(ctx).table.items())))


@route("monitor/set", "POST", ["group", "minCount", "maxDiffTotal"])
def monitor_set(ctx: Context, form: Form):
    group = form.group()
    bounds = (form.integer("minCount", 0, MAX_MIN_COUNT, 0),
              form.integer("maxDiffTotal", 0, MAX_DIFF_TOTAL, MAX_DIFF_TOTAL))
    try:
        _monitors(ctx).set(group, *bounds)
    except ValueError as e:
        raise BadRequest(f"group: {e}") from None
    return defer.succeed({"group": group, "minCount": bounds[0], "maxDiffTotal": bounds[1]})


@route("monitor/delete", "POST", ["group"])
def monitor_delete(ctx: Context, form: Form):
    group = form.group()
    return defer.succeed({"group": group, "deleted": _monitors(ctx).delete(group)})
