"""JSON state files the way RocketMQ's ConfigManager keeps them (wire doc §5.6).

The writing and reading (``.tmp`` then rename, ``.bak`` fallback) is ``mq.common.configfile``'s; this
base class adds the manager side: a path, and an ``encode``/``decode`` pair per table.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from twisted.logger import Logger

from mq.common import fastjson
from mq.common.configfile import read_json_file, write_atomically

log = Logger()


class StateFileError(ValueError):
    """A state file that is there but cannot be used: the broker refuses to start, as RocketMQ's does, rather
    than run without its content and then save over it."""


class JsonStateFile:
    """Base of the managers that keep their table in one JSON file: subclasses encode and decode it."""

    #: JSON maps with integer keys (fastjson writes them unquoted); False lets ``persist`` use the C encoder.
    INT_KEYS = True

    def __init__(self, path: str) -> None:
        self.path = path
        #: Times the table was marked changed (``dirty`` set): a DLedger leader announces it, so its followers
        #: copy offsets that moved within a second rather than at the next ``slaveSyncInterval``.
        self.changes = 0
        #: Changed since the last save that succeeded; saved by ``persist_if_dirty`` (on the owner's timer).
        self.dirty = False
        self._failing = False
        # Saves may run in a thread (``snapshot``): one writer at a time, and never an older state last.
        self._lock = threading.Lock()
        self._taken = 0
        self._written = 0

    @property
    def dirty(self) -> bool:
        return self._dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        if value:
            self.changes += 1
        self._dirty = value

    def encode(self) -> Any:
        """The JSON-ready object to write."""
        raise NotImplementedError

    def decode(self, data: Any) -> None:
        """Take the state from a parsed file."""
        raise NotImplementedError

    def load(self, strict: bool = False) -> bool:
        """Read the file (or its backup); False when there is none (the state stays as it is).

        ``strict``: a file that holds something but neither it nor its backup reads as JSON, or whose content
        does not decode, raises StateFileError naming it (a broker's start); otherwise it is logged and left.
        """
        data = read_json_file(self.path)
        if data is None:
            if strict and _holds_something(self.path):
                raise StateFileError(f"{self.path} is not JSON and there is no readable {self.path}.bak: fix the "
                                     f"file or move it away")
            return False
        try:
            self.decode(data)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if strict:
                raise StateFileError(f"{self.path} does not decode ({e}): fix the file or move it away") from None
            log.warn("ignoring {path}: {error}", path=self.path, error=e)
            return False
        return True

    def persist(self) -> bool:
        """Write the state so that a crash leaves the old or the new file whole.

        A write that fails (a full disk) logs one warning line, keeps the previous file as it was and leaves
        the state ``dirty``, so the broker's timer (``persist_if_dirty``) saves it once it can.
        """
        try:
            self.snapshot()()
        except OSError as e:
            self.dirty = True
            if not self._failing:
                log.warn("cannot save {path} ({error}): the previous file is kept; trying again later",
                         path=self.path, error=e.strerror or e)
                self._failing = True
            return False
        if self._failing:
            log.info("saved {path} again", path=self.path)
            self._failing = False
        return True

    def snapshot(self) -> Callable[[], None]:
        """Take the state now (on the reactor thread) and return the function that writes it. That function
        may run in another thread (the encoding and the fsync then leave the reactor free); a snapshot older
        than one already written is dropped."""
        self.dirty = False
        self._taken += 1
        taken = self._taken
        data = self.encode()  # the managers' encode() copies their tables
        dumps = fastjson.dumps if self.INT_KEYS else fastjson.dumps_string_keyed

        def write() -> None:
            with self._lock:
                if taken > self._written:
                    write_atomically(self.path, dumps(data))
                    self._written = taken

        return write

    def persist_if_dirty(self) -> None:
        """Save the state if it changed since the last save; a failed save is tried again next time."""
        if self.dirty:
            self.persist()


def _holds_something(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(f.read(4096).strip())
    except FileNotFoundError:
        return False
    except OSError:
        return True  # there, but unreadable: not something to save over
