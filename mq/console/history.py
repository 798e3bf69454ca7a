"""``DayHistory``: the dashboard's TPS lines per local day, kept in files across console restarts.

rocketmq-dashboard keeps what it collects in one file per day under its data path and shows any kept day;
this console does the same with its own samples: at most one point per line every ``step`` seconds (the last
sample of each step), today's lines in memory, and each point appended once to ``<directory>/<yyyy-mm-dd>.jsonl``
when its step is over (``["b", broker, t, put TPS, get TPS]`` or ``["t", topic, t, TPS]`` a line), every
minute and at stop; read back at start, and earlier days read from their files when asked for. Appending only
the finished points keeps each write small (a point per line per step) so the reactor never encodes a whole day.

Bounds: ``days`` files kept (older ones are deleted at start and when the day changes), at most
``MAX_POINTS`` points per line per day (the oldest go first), at most ``max_brokers`` broker lines and
``max_topics`` topic lines per day (lines past that are not kept that day); a day's file stops growing at
``MAX_FILE_BYTES`` (logged: a short step with many lines fills it) and a larger one is not read; a line of a file
not in this shape (a crash's half-written last line) is skipped.
"""

from __future__ import annotations

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
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: entry kind → (width of a point, which lines)
KINDS = {"b": 3, "t": 2}

Lines = Dict[str, List[List[float]]]


def day_of(ms: float) -> str:
    """The local date of a time in milliseconds, as the files are named."""
    return time.strftime("%Y-%m-%d", time.localtime(ms / 1000.0))


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class DayLines:
    """One day's broker and topic lines, a point per line per step, bounded."""

    def __init__(self, step_ms: float, max_brokers: int, max_topics: int) -> None:
        self.step_ms = step_ms
        self.lines: Dict[str, Lines] = {"b": {}, "t": {}}
        self.limits = {"b": max_brokers, "t": max_topics}

    def point(self, kind: str, label: str, point: List[float]) -> bool:
        """Add a point, replacing the line's last one within the same step; False if the line is not kept."""
        lines = self.lines[kind]
        points = lines.get(label)
        if points is None:
            if len(lines) >= self.limits[kind] or not 0 < len(label) <= MAX_LABEL:
                return False
            points = lines[label] = []
        if points and points[-1][0] // self.step_ms == point[0] // self.step_ms:
            points[-1] = point
            return True
        points.append(point)
        if len(points) > MAX_POINTS:
            del points[0]
        return True

    def entry(self, raw: bytes) -> bool:
        """One line of a day file; False (and nothing added) when it is not in shape."""
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's stack
            return False
        if not (isinstance(item, list) and len(item) >= 2 and item[0] in KINDS and isinstance(item[1], str)):
            return False
        values = item[2:]
        if len(values) != KINDS[item[0]] or not all(map(_number, values)):
            return False
        return self.point(item[0], item[1], [float(v) for v in values])


def read_day_file(path: str, step_ms: float, max_brokers: int, max_topics: int) -> Tuple[Lines, Lines]:
    """A day file's broker and topic lines; ValueError/OSError when it cannot be read at all."""
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{size} bytes is more than {MAX_FILE_BYTES}")
    day = DayLines(step_ms, max_brokers, max_topics)
    skipped = 0
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip() and not day.entry(raw):
                skipped += 1
    if skipped:
        log.warn("console: {path}: {n} line(s) not in shape skipped", path=path, n=skipped)
    return day.lines["b"], day.lines["t"]


def append_lines(path: str, data: bytes) -> None:
    """Append whole lines; a crash leaves at most a half last line, which reading skips."""
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
        self.today = DayLines(self.step_ms, max_brokers, max_topics)
        #: per (kind, label): the time of the newest point already in today's file
        self._written: Dict[Tuple[str, str], float] = {}
        self._last_save = clock.seconds()
        #: the write running in a thread, if any
        self._pending: Optional[defer.Deferred] = None
        #: bytes in today's file (counted as appended): past MAX_FILE_BYTES nothing more is appended that day
        self._file_bytes = 0

    @property
    def brokers(self) -> Lines:
        return self.today.lines["b"]

    @property
    def topics(self) -> Lines:
        return self.today.lines["t"]

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
        self._prune()
        path = self._path(self.day)
        if not os.path.exists(path):
            return
        try:
            self._file_bytes = os.path.getsize(path)
            brokers, topics = read_day_file(path, self.step_ms, self.max_brokers, self.max_topics)
        except (OSError, ValueError) as e:
            log.warn("console: {path} not read ({why}); today's history starts anew", path=path, why=e)
            return
        self.today.lines = {"b": brokers, "t": topics}
        self._written = {(kind, label): points[-1][0] for kind, lines in self.today.lines.items()
                         for label, points in lines.items() if points}

    def stop(self) -> defer.Deferred:
        """Write every point not yet written, the open step's too, after a write still running in a thread:
        on the reactor thread, as the thread pool may be stopping."""
        done = self._pending if self._pending is not None else defer.succeed(None)
        return done.addBoth(lambda _: self._final_write())

    def _final_write(self) -> None:
        data = self._unwritten(include_open=True)
        if data and self.directory is not None and self._room_for(data):
            self._write(self.day, data)

    def _room_for(self, data: bytes) -> bool:
        """Whether today's file may grow by ``data`` and stay readable (MAX_FILE_BYTES); logged once a day."""
        if self._file_bytes + len(data) > MAX_FILE_BYTES:
            if self._file_bytes <= MAX_FILE_BYTES:
                log.warn("console: {path} is full ({max} bytes): the rest of the day is not kept (a larger "
                         "--history-step makes fewer points)", path=self._path(self.day), max=MAX_FILE_BYTES)
                self._file_bytes = MAX_FILE_BYTES + 1
            return False
        self._file_bytes += len(data)
        return True

    # -- adding ------------------------------------------------------------------------------------

    def add(self, now_ms: float, brokers: Mapping[str, Tuple[float, float]], topics: Mapping[str, float]) -> None:
        """One sampling round's figures: a point per line, replacing the line's last one within the same step."""
        day = day_of(now_ms)
        if day != self.day:
            self.save(force=True, include_open=True)
            self.day, self.today, self._written = day, DayLines(self.step_ms, self.max_brokers, self.max_topics), {}
            self._file_bytes = 0
            self._prune()
        for label, (put, got) in brokers.items():
            self.today.point("b", label, [now_ms, put, got])
        for topic, tps in topics.items():
            self.today.point("t", topic, [now_ms, tps])
        self.save()

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

    def read(self, day: str) -> defer.Deferred:
        """A Deferred of ``(broker lines, topic lines)`` of ``day`` (a ``yyyy-mm-dd`` the caller checked);
        empty lines for a day without a file."""
        if day == self.day:
            return defer.succeed((self.brokers, self.topics))
        path = self._path(day)
        if self.directory is None or not os.path.exists(path):
            return defer.succeed(({}, {}))
        args = (path, self.step_ms, self.max_brokers, self.max_topics)
        pool = getattr(self.clock, "getThreadPool", None)
        if pool is None:  # a task.Clock in tests: read here
            d = defer.maybeDeferred(read_day_file, *args)
        else:
            d = threads.deferToThreadPool(self.clock, pool(), read_day_file, *args)
        return d.addErrback(self._unread, path)

    @staticmethod
    def _unread(failure: Failure, path: str) -> Tuple[Lines, Lines]:
        failure.trap(OSError, ValueError)
        log.warn("console: {path} not read ({why})", path=path, why=failure.getErrorMessage())
        return {}, {}

    # -- files -------------------------------------------------------------------------------------

    def _path(self, day: str) -> str:
        return os.path.join(self.directory or "", f"{day}.jsonl")

    def _unwritten(self, include_open: bool) -> bytes:
        """The points not yet in today's file, as its lines: those of finished steps (and, at stop or a day's
        change, each line's open last point too). Marks them written."""
        out = []
        for kind, lines in self.today.lines.items():
            for label, points in lines.items():
                last = self._written.get((kind, label), -math.inf)
                end = len(points) if include_open else len(points) - 1
                fresh = [p for p in points[:end] if p[0] > last]
                if fresh:
                    out.extend(json.dumps([kind, label, *p], separators=(",", ":")) for p in fresh)
                    self._written[(kind, label)] = fresh[-1][0]
        return ("\n".join(out) + "\n").encode() if out else b""

    def save(self, force: bool = False, include_open: bool = False) -> None:
        """Append the finished points when a minute has passed since the last write (or ``force``), in a
        thread."""
        now = self.clock.seconds()
        if self.directory is None or self._pending is not None:
            return
        if not force and now - self._last_save < SAVE_EVERY:
            return
        self._last_save = now
        data = self._unwritten(include_open)
        if not data or not self._room_for(data):
            return
        pool = getattr(self.clock, "getThreadPool", None)
        if pool is None or force:
            self._write(self.day, data)
            return
        d = threads.deferToThreadPool(self.clock, pool(), self._write, self.day, data)
        self._pending = d.addBoth(self._written_now)

    def _written_now(self, result) -> None:
        self._pending = None
        if isinstance(result, Failure):
            log.failure("console: writing the dashboard's history failed", result)

    def _write(self, day: str, data: bytes) -> None:
        try:
            append_lines(self._path(day), data)
        except OSError as e:
            log.error("console: cannot write the dashboard's history {path}: {why}", path=self._path(day), why=e)

    def _prune(self) -> None:
        """Delete day files older than ``days`` days counted back from today."""
        if self.directory is None:
            return
        oldest = day_of((time.mktime(time.strptime(self.day, "%Y-%m-%d")) - (self.days - 1) * 86400 + 43200) * 1000)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            m = DAY_FILE.match(name)
            if m is not None and m.group(1) < oldest:
                try:
                    os.remove(os.path.join(self.directory, name))
                except OSError as e:
                    log.warn("console: cannot delete {name}: {why}", name=name, why=e)
