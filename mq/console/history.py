"""``DayHistory``: the dashboard's TPS lines per local day, kept in files across console restarts.

rocketmq-dashboard keeps what it collects in one file per day under its data path and shows any kept day;
this console does the same with its own samples: at most one point per line every ``step`` seconds (the last
sample of each step), today's lines in memory and written to ``<directory>/<yyyy-mm-dd>.json`` every minute
and at stop, read back at start, and earlier days read from their files when asked for.

Bounds: ``days`` files kept (older ones are deleted at start and when the day changes), at most
``MAX_POINTS`` points per line per day (the oldest go first), at most ``max_brokers`` broker lines and
``max_topics`` topic lines per day (lines past that are not kept that day), and a file larger than
``MAX_FILE_BYTES`` or not in this shape is not read (logged; today's is replaced at the next write).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

#: One point a minute for a whole day.
MAX_POINTS = 1440
MAX_FILE_BYTES = 64 << 20
MAX_LABEL = 512
SAVE_EVERY = 60.0
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Lines = Dict[str, List[List[float]]]


def day_of(ms: float) -> str:
    """The local date of a time in milliseconds, as the files are named."""
    return time.strftime("%Y-%m-%d", time.localtime(ms / 1000.0))


def _lines(raw: object, width: int, limit: int) -> Lines:
    """``{label: [[t, v...], ...]}`` checked point by point; ValueError says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("a line table is not an object")
    lines: Lines = {}
    for label, points in raw.items():
        if len(lines) >= limit:
            break
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL or not isinstance(points, list):
            raise ValueError(f"line {str(label)[:40]!r} is not a name and a list")
        kept = []
        for p in points[-MAX_POINTS:]:
            if not (isinstance(p, list) and len(p) == width
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p)):
                raise ValueError(f"line {label[:40]!r} has a point that is not {width} numbers")
            kept.append([float(v) for v in p])
        lines[label] = kept
    return lines


def read_day_file(path: str, max_brokers: int, max_topics: int) -> Tuple[Lines, Lines]:
    """A day file's broker and topic lines; ValueError/OSError when it cannot be used."""
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{size} bytes is more than {MAX_FILE_BYTES}")
    with open(path, "rb") as f:
        data = json.loads(f.read())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return _lines(data.get("brokers", {}), 3, max_brokers), _lines(data.get("topics", {}), 2, max_topics)


_TMP_NUMBERS = itertools.count()


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half of one (each
    write its own temporary file: a write at stop may overlap one still running in a thread)."""
    tmp = f"{path}.{os.getpid()}.{next(_TMP_NUMBERS)}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DayHistory:
    """Today's lines in memory, every kept day on disk (``directory`` None: today's in memory only)."""

    def __init__(self, directory: Optional[str], clock, step: float, days: int, max_brokers: int,
                 max_topics: int) -> None:
        self.directory = directory
        self.clock = clock
        self.step_ms = step * 1000.0
        self.days = days
        self.max_brokers = max_brokers
        self.max_topics = max_topics
        self.day = day_of(clock.seconds() * 1000)
        self.brokers: Lines = {}
        self.topics: Lines = {}
        self.dirty = False
        self._last_save = clock.seconds()
        #: the write running in a thread, if any
        self._pending: Optional[defer.Deferred] = None

    # -- start and stop ----------------------------------------------------------------------------

    def start(self) -> None:
        """Make the directory, delete days past ``days`` and read today's file back."""
        if self.directory is None:
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            log.error("console: the dashboard's history is not kept: cannot make {dir}: {why}",
                      dir=self.directory, why=e)
            self.directory = None
            return
        self._prune(temporary=True)
        path = self._path(self.day)
        if os.path.exists(path):
            try:
                self.brokers, self.topics = read_day_file(path, self.max_brokers, self.max_topics)
            except (OSError, ValueError) as e:
                log.warn("console: {path} not read ({why}); today's history starts anew", path=path, why=e)

    def stop(self) -> defer.Deferred:
        """Write today's lines now, after a write still running in a thread (so the newest lines are the ones
        left): on the reactor thread, as the thread pool may be stopping."""
        done = self._pending if self._pending is not None else defer.succeed(None)
        return done.addBoth(lambda _: self._final_write())

    def _final_write(self) -> None:
        if self.dirty and self.directory is not None:
            self.dirty = False
            self._write(self.day, self._encode())

    # -- adding ------------------------------------------------------------------------------------

    def add(self, now_ms: float, brokers: Mapping[str, Tuple[float, float]], topics: Mapping[str, float]) -> None:
        """One sampling round's figures: a point per line, replacing the line's last one within the same step."""
        day = day_of(now_ms)
        if day != self.day:
            self.save(force=True)
            self.day, self.brokers, self.topics = day, {}, {}
            self._prune()
        for label, (put, got) in brokers.items():
            self._point(self.brokers, self.max_brokers, label, [now_ms, put, got])
        for topic, tps in topics.items():
            self._point(self.topics, self.max_topics, topic, [now_ms, tps])
        self.dirty = True
        self.save()

    def _point(self, lines: Lines, limit: int, label: str, point: List[float]) -> None:
        points = lines.get(label)
        if points is None:
            if len(lines) >= limit or len(label) > MAX_LABEL:
                return
            points = lines[label] = []
        if points and points[-1][0] // self.step_ms == point[0] // self.step_ms:
            points[-1] = point
            return
        points.append(point)
        if len(points) > MAX_POINTS:
            del points[0]

    # -- reading -----------------------------------------------------------------------------------

    def kept_days(self) -> List[str]:
        """Today and every day with a file, newest first."""
        found = {self.day}
        if self.directory is not None:
            try:
                names: Iterable[str] = os.listdir(self.directory)
            except OSError:
                names = ()
            found.update(m.group(1) for m in map(DAY_FILE.match, names) if m)
        return sorted(found, reverse=True)[: self.days]

    def read(self, day: str):
        """A Deferred of ``(broker lines, topic lines)`` of ``day`` (a ``yyyy-mm-dd`` the caller checked);
        empty lines for a day without a file."""
        if day == self.day:
            return defer.succeed((self.brokers, self.topics))
        if self.directory is None or not os.path.exists(self._path(day)):
            return defer.succeed(({}, {}))
        pool = getattr(self.clock, "getThreadPool", None)
        path = self._path(day)
        if pool is None:  # a task.Clock in tests: read here
            d = defer.maybeDeferred(read_day_file, path, self.max_brokers, self.max_topics)
        else:
            d = threads.deferToThreadPool(self.clock, pool(), read_day_file, path, self.max_brokers, self.max_topics)
        return d.addErrback(self._unread, path)

    @staticmethod
    def _unread(failure: Failure, path: str) -> Tuple[Lines, Lines]:
        failure.trap(OSError, ValueError)
        log.warn("console: {path} not read ({why})", path=path, why=failure.getErrorMessage())
        return {}, {}

    # -- files -------------------------------------------------------------------------------------

    def _path(self, day: str) -> str:
        return os.path.join(self.directory or "", f"{day}.json")

    def _encode(self) -> bytes:
        return json.dumps({"day": self.day, "brokers": self.brokers, "topics": self.topics},
                          separators=(",", ":")).encode()

    def save(self, force: bool = False) -> None:
        """Write today's lines when a minute has passed since the last write (or ``force``), in a thread."""
        now = self.clock.seconds()
        if not self.dirty or self.directory is None or self._pending is not None:
            return
        if not force and now - self._last_save < SAVE_EVERY:
            return
        self._last_save = now
        self.dirty = False
        data, day = self._encode(), self.day
        pool = getattr(self.clock, "getThreadPool", None)
        if pool is None or force:
            self._write(day, data)
            return
        d = threads.deferToThreadPool(self.clock, pool(), self._write, day, data)
        self._pending = d.addBoth(self._written)

    def _written(self, result) -> None:
        self._pending = None
        if isinstance(result, Failure):
            log.failure("console: writing the dashboard's history failed", result)

    def _write(self, day: str, data: bytes) -> None:
        try:
            write_atomically(self._path(day), data)
        except OSError as e:
            log.error("console: cannot write the dashboard's history {path}: {why}", path=self._path(day), why=e)

    def _prune(self, temporary: bool = False) -> None:
        """Delete day files older than ``days`` days counted back from today (and, at start, temporary files
        a crash left)."""
        if self.directory is None:
            return
        oldest = day_of((time.mktime(time.strptime(self.day, "%Y-%m-%d")) - (self.days - 1) * 86400 + 43200) * 1000)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            m = DAY_FILE.match(name)
            stale = m is not None and m.group(1) < oldest
            if stale or (temporary and name.endswith(".tmp") and DAY_FILE.match(name.split(".", 1)[0] + ".json")):
                try:
                    os.remove(os.path.join(self.directory, name))
                except OSError as e:
                    log.warn("console: cannot delete {name}: {why}", name=name, why=e)
