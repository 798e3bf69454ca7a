"""What every mq command shares on its command line, so a RocketMQ operator's habits work on each of them.

``-c FILE`` is the config file (as for ``mqbroker -c`` and ``mqnamesrv -c``), ``--bind`` the address to listen
on, ``--metrics-port 0`` is off, ``--version`` prints mq's version; the config file is read one way for all
(Java properties, mq.common.properties), and the ports a service will listen on are checked before it starts,
so a port in use stops the start with one line rather than a traceback after the store has opened.
"""

from __future__ import annotations

import errno
import os
import platform
import socket
import sys
from typing import Dict, Iterable, NoReturn, Tuple

from twisted.python import usage

from mq import __version__
from mq.common.config import refuse_start
from mq.common.properties import parse_properties


def version_text(prog: str) -> str:
    """``mqadmin 0.1.0 (Twisted 26.10.0, CPython 3.11.7)``: what ``--version`` prints."""
    from twisted import copyright

    return (f"{prog} {__version__} (RocketMQ 4.x protocol; Twisted {copyright.version}, "
            f"{platform.python_implementation()} {platform.python_version()})")


def config_option(what: str) -> list:
    """The ``-c/--config`` option of a service (``what`` says which keys the file holds)."""
    return ["config", "c", None, f"Java properties file of {what}, in RocketMQ's key names (as `mqbroker -c`); "
                                 "the options given here win over it."]


def bind_option(what: str = "") -> list:
    return ["bind", None, None, f"Address to listen on{what} (default: every interface)."]


def metrics_port_option(what: str = "") -> list:
    return ["metrics-port", None, None, f"Serve Prometheus metrics at http://host:PORT/metrics{what}; "
                                        "0 = off (metricsPort, default 0)."]


class ServiceOptions(usage.Options):
    """Base of the ``twistd`` plugins' options: ``--version`` prints mq's version rather than Twisted's."""

    #: The service's name in ``--version`` and in the one-line refusals.
    service = "mq"

    def opt_version(self) -> NoReturn:
        """Print mq's version and exit."""
        print(version_text(f"twistd {self.service}"))
        sys.exit(0)

    def refuse(self, error: object) -> NoReturn:
        refuse_start(self.service, error)

    def read_config_file(self) -> Dict[str, str]:
        """The ``--config`` file's settings (nothing without one); a file that cannot be read or parsed
        stops the start with one line."""
        if not self["config"]:
            return {}
        path = os.path.expanduser(self["config"])
        try:
            return read_properties_file(path)
        except (OSError, ValueError) as e:
            self.refuse(f"cannot read --config {path}: {getattr(e, 'strerror', None) or e}")


def read_properties_file(path: str) -> Dict[str, str]:
    """A Java properties file's settings (UTF-8, as RocketMQ reads ``broker.conf``)."""
    with open(path, encoding="utf-8") as f:
        return parse_properties(f.read())


#: A port a service will listen on: (port, interface, the setting that chose it).
Listen = Tuple[int, str, str]


def check_ports_free(listens: Iterable[Listen]) -> None:
    """Raise ValueError with one line for the first port that cannot be bound (in use, or an address this
    host does not have). A check before the start, with SO_REUSEADDR as Twisted binds: a port taken between
    this check and the service's start still fails there, with Twisted's own error."""
    for port, interface, key in listens:
        if not port:
            continue
        where = f"{interface or '*'}:{port}"
        with socket.socket(socket.AF_INET6 if ":" in interface else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((interface, port))
                s.listen(1)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise ValueError(f"port {port} ({key}) is in use: another process listens on {where}; "
                                     f"stop it or choose another port") from None
                raise ValueError(f"cannot listen on {where} ({key}): {e.strerror or e}") from None
