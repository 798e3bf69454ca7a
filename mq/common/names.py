"""Names from the wire (topics, groups) and the one way such a name becomes a path.

RocketMQ's rule for both (``Validators.checkTopic``/``checkGroup``): only ``[%|a-zA-Z0-9_-]``, at most 127
characters for a topic, 255 for a group. The whole name must match: ``re.match`` with ``$`` lets a trailing
newline through, so ``fullmatch`` is used. A name that passes has no ``/``, ``.``, NUL or separator, so it is
always one path component; ``path_under`` still checks that the joined path stays under its root, so a
future caller that forgets to validate cannot leave the store.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Optional

from mq.common.hotcache import hot_cache

TOPIC_MAX_LENGTH = 127
GROUP_MAX_LENGTH = 255
LEGAL_CHARS = "[%|a-zA-Z0-9_-]"
_LEGAL = re.compile(LEGAL_CHARS + "+")
#: ``%RETRY%`` is the longer of the two prefixes a group's broker-made topics get (``%DLQ%`` is shorter).
_RETRY_PREFIX = "%RETRY%"


class IllegalName(ValueError):
    """A name that cannot be a topic or group, or a path that would leave its root."""


def _error(kind: str, name: object, max_length: int) -> Optional[str]:
    if not isinstance(name, str) or not name:
        return f"the {kind} is empty"
    if len(name) > max_length:
        return f"the {kind} is longer than {max_length} characters"
    if _LEGAL.fullmatch(name) is None:
        return f"the {kind} {name[:max_length]!r} contains characters outside {LEGAL_CHARS}"
    return None


@hot_cache(4096)
def topic_error(topic: str) -> Optional[str]:
    """Why ``topic`` is not a legal topic name, or None if it is (cached: the same topics come back)."""
    return _error("topic", topic, TOPIC_MAX_LENGTH)


@lru_cache(maxsize=4096)
def group_error(group: str) -> Optional[str]:
    """Why ``group`` is not a legal producer or consumer group name, or None if it is."""
    return _error("group", group, GROUP_MAX_LENGTH)


def retry_group_error(group: str) -> Optional[str]:
    """``group_error``, or why the group's ``%RETRY%``/``%DLQ%`` topics could not be stored (a group may be
    255 characters long, a topic only 127): such a group cannot have messages sent back for retry."""
    why = group_error(group)
    if why is None and len(_RETRY_PREFIX) + len(group) > TOPIC_MAX_LENGTH:
        why = (f"the group is longer than {TOPIC_MAX_LENGTH - len(_RETRY_PREFIX)} characters, too long for "
               f"its retry topic")
    return why


def is_valid_topic(topic: str) -> bool:
    return topic_error(topic) is None


def path_under(root: str, name: str, *more: str) -> str:
    """``root/name/more...`` for a legal topic or group ``name`` (``more``: further legal components such as
    a queue id); IllegalName if a component is not legal or the joined path would not lie under ``root``.

    The check is on the normalised path, not on symlinks: a link the operator put inside the store (a topic
    moved to another disk) is followed as before.
    """
    why = topic_error(name) if len(name) <= TOPIC_MAX_LENGTH else group_error(name)
    if why is not None:
        raise IllegalName(why)
    for part in more:
        if _error("path component", part, GROUP_MAX_LENGTH) is not None:
            raise IllegalName(f"{part!r} is not a legal path component")
    base = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.join(base, name, *more))
    if os.path.dirname(path) == path or not path.startswith(base + os.sep):
        raise IllegalName(f"{path!r} is outside {base!r}")
    return path
