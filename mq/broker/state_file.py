"""JSON state files the way RocketMQ's ConfigManager keeps them (wire doc §5.6).

The writing and reading (``.tmp`` then rename, ``.bak`` fallback) is ``mq.common.configfile``'s; this
base class adds the manager side: a path, and an ``encode``/``decode`` pair per table.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from mq.common import fastjson
from mq.common.configfile import read_json_file, write_atomically

log = Logger()


class JsonStateFile:
    """Base of the managers that keep their table in one JSON file: subclasses encode and decode it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dirty = False  # changed since the last save that succeeded
        self._failing = False

    def encode(self) -> Any:
        """The JSON-ready object to write."""
        raise NotImplementedError

    def decode(self, data: Any) -> None:
        """Take the state from a parsed file."""
        raise NotImplementedError

    def load(self) -> bool:
        """Read the file (or its backup); False when there is none (the state stays as it is)."""
        data = read_json_file(self.path)
        if data is None:
            return False
        try:
            self.decode(data)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warn("ignoring {path}: {error}", path=self.path, error=e)
            return False
        return True

    def persist(self) -> bool:
        """Write the state so that a crash leaves the old or the new file whole.

        A write that fails (a full disk) logs one warning line, keeps the previous file as it was and leaves
        the state ``dirty``, so the broker's timer (``persist_if_dirty``) saves it once it can.
        """
        try:
            write_atomically(self.path, fastjson.dumps(self.encode()))
        except OSError as e:
            self.dirty = True
            if not self._failing:
                log.warn("cannot save {path} ({error}): the previous file is kept; trying again later",
                         path=self.path, error=e.strerror or e)
                self._failing = True
            return False
        self.dirty = False
        if self._failing:
            log.info("saved {path} again", path=self.path)
            self._failing = False
        return True

    def persist_if_dirty(self) -> None:
        if self.dirty:
            self.persist()
