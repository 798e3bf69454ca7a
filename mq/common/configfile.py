"""Crash-safe JSON state files, written as RocketMQ's ConfigManager does (``.tmp``, ``.bak``, rename)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from twisted.logger import Logger

from mq.common import fastjson

log = Logger()


def write_atomically(path: "str | os.PathLike", text: str) -> None:
    """Write ``text`` to ``path`` so a crash leaves either the old or the new content, never half of one.

    The new content goes to ``<path>.tmp`` and is fsynced; the old file is kept as ``<path>.bak``; the
    rename makes the switch. On an OSError (ENOSPC...) the old file is untouched and the error raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError:  # a full disk: the old file is untouched; leave no partial .tmp behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if path.exists():
        bak = path.with_name(path.name + ".bak")
        try:
            os.replace(path, bak)
        except OSError:
            pass
    os.replace(tmp, path)


class FileTooLarge(Exception):
    """A state file longer than its reader's bound (not a ValueError: it is not skipped for the backup)."""


def read_json_file(path: "str | os.PathLike", max_bytes: Optional[int] = None) -> Optional[Any]:
    """The parsed content of ``path``, falling back to ``<path>.bak``; None when neither is readable.

    A file longer than ``max_bytes`` raises FileTooLarge rather than falling back: the next save would
    otherwise replace it with the older backup's content.
    """
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".bak")):
        if not candidate.exists():
            continue
        try:
            with open(candidate, "rb") as f:
                raw = f.read(-1 if max_bytes is None else max_bytes + 1)
        except OSError as e:
            log.warn("cannot read {file}: {error}", file=str(candidate), error=e)
            continue
        if max_bytes is not None and len(raw) > max_bytes:
            raise FileTooLarge(f"{candidate} is larger than {max_bytes} bytes")
        try:
            text = raw.decode("utf-8")
            if not text.strip():
                continue
            return fastjson.loads(text)
        except ValueError as e:
            log.warn("cannot read {file}: {error}", file=str(candidate), error=e)
    return None
