"""CPython's cyclic garbage collector, set for a broker: fewer young collections, and the objects of start-up
(modules, configs, the store's tables) moved out of every later full collection.

With Python's defaults (700, 10, 10) a broker with many requests in flight pays for collections that grow with
them: a request waiting for its replicas (a DLedger leader, a SYNC_MASTER) outlives two young collections, is
promoted to the old generation, and soon sets off a full collection that walks the whole heap. Measured on a
DLedger leader with 4 x 1,024 sends in flight: 68.7 µs of CPU per message with the defaults, 46.1 with
(50000, 20, 100) (docs/performance.md). ``MQ_GC_THRESHOLD`` overrides the thresholds (three integers) or keeps
Python's (``default``); PyPy's collector is another design and is left alone.
"""

from __future__ import annotations

import gc
import os
import platform
from typing import Mapping, Optional, Tuple

from twisted.application import service
from twisted.logger import Logger

log = Logger()

#: (young, middle, old) thresholds for a broker.
BROKER_THRESHOLDS = (50000, 20, 100)
ENV = "MQ_GC_THRESHOLD"


def thresholds_from(environ: Mapping[str, str]) -> Optional[Tuple[int, int, int]]:
    """The thresholds ``environ`` asks for (None: Python's own); ValueError naming what is wrong."""
    text = environ.get(ENV, "").strip()
    if not text:
        return BROKER_THRESHOLDS
    if text == "default":
        return None
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 < v <= 10_000_000 for v in values):
        raise ValueError(f"{ENV}={text[:60]!r}: three integers 1-10000000 (young,middle,old) or 'default'")
    return values  # type: ignore[return-value]


class GcTuning(service.Service):
    """Applied once the services before it have started (the broker's store is loaded by then)."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        self.thresholds = thresholds_from(os.environ if environ is None else environ)
        self.frozen = 0

    def startService(self) -> None:
        super().startService()
        if self.thresholds is None or platform.python_implementation() != "CPython":
            return
        gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        gc.set_threshold(*self.thresholds)
        log.info("GC: thresholds {t}, {n} start-up objects left out of collections ({env} to change)",
                 t=",".join(map(str, self.thresholds)), n=self.frozen, env=ENV)
