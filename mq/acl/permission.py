"""Permissions (RocketMQ's ``Permission``): the perm words, their bits, and the check rule.

An account owns a perm per topic and per group (kept under the group's ``%RETRY%`` topic, as RocketMQ keys
it); a request needs a perm per resource (see resources.py).
"""

from __future__ import annotations

from typing import Dict, Iterable, Tuple

DENY = 1
ANY = 2
PUB = 4
SUB = 8

#: The words plain_acl.yml may use; RocketMQ reads any other word as DENY, mq refuses it at load.
PERM_WORDS: Dict[str, int] = {"DENY": DENY, "PUB": PUB, "SUB": SUB, "PUB|SUB": PUB | SUB, "SUB|PUB": PUB | SUB}


class PermError(ValueError):
    """A perm word or ``resource=PERM`` entry that does not parse; the message names it."""


def parse_perm(word: str) -> int:
    """The bits of a perm word (whitespace around it ignored); raises PermError for an unknown word."""
    text = str(word).strip().upper()
    try:
        return PERM_WORDS[text]
    except KeyError:
        raise PermError(f"{word!r} is not a permission (one of {', '.join(PERM_WORDS)})") from None


def perm_word(bits: int) -> str:
    """The word for ``bits`` (as the admin commands write them back)."""
    if bits & DENY or not bits & (PUB | SUB):
        return "DENY"
    return {PUB: "PUB", SUB: "SUB"}.get(bits & (PUB | SUB), "PUB|SUB")


def parse_resource_perms(entries: Iterable[str], what: str) -> Tuple[Tuple[str, int], ...]:
    """``resource=PERM`` entries as (resource, bits); raises PermError naming a malformed entry."""
    out = []
    for entry in entries:
        resource, sep, word = str(entry).partition("=")
        if not sep or not resource.strip():
            raise PermError(f"{what} entry {entry!r} is not resource=PERM")
        out.append((resource.strip(), parse_perm(word)))
    return tuple(out)


def check_permission(needed: int, owned: int) -> bool:
    """RocketMQ's rule: DENY owned refuses; ANY needs PUB or SUB; otherwise any common bit."""
    if owned & DENY:
        return False
    if needed & ANY:
        return bool(owned & (PUB | SUB))
    return bool(needed & owned)
