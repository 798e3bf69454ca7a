"""The ``mqadmin`` command registry: each command module registers its commands with ``@command``.

Every module of this package named ``*_commands`` is a subject of commands (Apache's tools split them into
``command.topic``, ``command.consumer``, ...). ``load_commands`` imports them all, so a new module needs no
other edit; ``COMMANDS`` is what the parser, the dispatch in ``mq.admin.cli`` and the shell completion read.
"""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
from typing import Any, Callable, Dict, List, Optional, Tuple

import attr

from mq.admin.values import parse_timestamp


def java_bool(text: str) -> bool:
    """An option value read as Java's Boolean.parseBoolean reads it, but refusing anything not true/false."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value == "true"


def _number(text: str, convert: Callable[[str], Any], noun: str, ok: Callable[[Any], bool], rule: str) -> Any:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}: {value}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v > 0, "must be positive")


def non_negative_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v >= 0, "must be 0 or more")


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argument type for an integer in [lo, hi]."""
    def convert(text: str) -> int:
        return _number(text, int, "an integer", lambda v: lo <= v <= hi, f"must be {lo}..{hi}")

    convert.__name__ = f"integer {lo}..{hi}"
    return convert


def positive_seconds(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 < v < math.inf, "must be positive")


def timestamp_arg(text: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@attr.s(slots=True)
class Command:
    name: str = attr.ib()
    help: str = attr.ib()
    options: Tuple[Tuple[Tuple[str, ...], Dict[str, Any]], ...] = attr.ib()
    run: Callable = attr.ib()
    #: groups of dests of which exactly one must be given (``-b`` or ``-c``)
    one_of: Tuple[Tuple[str, ...], ...] = attr.ib(default=())
    #: takes ``-i interval``: ``main`` runs it again every interval until interrupted (``--count`` rounds)
    repeats: bool = attr.ib(default=False)
    #: seconds between rounds when ``-i`` is not given (None: one round only)
    every: Optional[float] = attr.ib(default=None)


COMMANDS: Dict[str, Command] = {}


def opt(*flags: str, **kwargs: Any) -> Tuple[Tuple[str, ...], Dict[str, Any]]:
    return flags, kwargs


BROKER_ADDR = opt("-b", "--brokerAddr", metavar="ADDR", help="the broker, host:port")
CLUSTER = opt("-c", "--clusterName", metavar="CLUSTER", help="every master broker of this cluster")


#: ``-i`` of the commands that repeat (the original's clusterList), and the hidden ``--count`` that ends them
REPEAT_OPTIONS = (
    opt("-i", "--interval", type=positive_seconds, metavar="SECONDS",
        help="print again every SECONDS seconds until interrupted"),
    opt("--count", type=positive_int, metavar="N", help=argparse.SUPPRESS),
)


def command(name: str, help: str, *options, one_of=(), repeats: bool = False, every: Optional[float] = None):
    def register(fn):
        extra = REPEAT_OPTIONS if repeats else ()
        COMMANDS[name] = Command(name, help, tuple(options) + extra, fn, tuple(one_of), repeats, every)
        return fn

    return register


def lines(*items: str) -> str:
    return "\n".join(items)


#: Suffix of the modules that register commands.
COMMAND_MODULE_SUFFIX = "_commands"


def load_commands() -> Dict[str, Command]:
    """Import every ``mq.admin.*_commands`` module (once; importing registers), in name order."""
    import mq.admin

    names: List[str] = sorted(m.name for m in pkgutil.iter_modules(mq.admin.__path__)
                              if m.name.endswith(COMMAND_MODULE_SUFFIX))
    for name in names:
        importlib.import_module(f"mq.admin.{name}")
    return COMMANDS
