"""``mqadmin``: the RocketMQ admin tool, with its command names and flag letters.

Each command is a function ``(api, args) -> Deferred[Result]`` registered with ``@command`` in one of the
``mq.admin.*_commands`` modules (``mq.admin.registry``); ``main`` parses the arguments, runs the reactor for that
one command (``twisted.internet.task.react``) and exits 0, or prints one line ``mqadmin <command>: <what went
wrong>`` on stderr and exits non-zero (``mq.admin.api`` EXIT_*).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from twisted.internet import defer, task

from mq.acl.signing import ENV_ACCESS_KEY, ENV_SECRET_KEY, Credentials
from mq.admin import completion, output
from mq.admin.api import EXIT_FAILED, EXIT_USAGE, AdminError, MQAdminAPI
from mq.admin.progress import Progress, is_terminal

# The registry's names, re-exported for the command modules and scripts written against this module.
from mq.admin.registry import (  # noqa: F401
    BROKER_ADDR,
    CLUSTER,
    COMMANDS,
    Command,
    command,
    java_bool,
    lines,
    load_commands,
    non_negative_int,
    opt,
    positive_int,
    positive_seconds,
    timestamp_arg,
)
from mq.admin.targets import first_success, group_brokers, queues_of, target_brokers, topic_brokers  # noqa: F401
from mq.common.cli import version_text

PROG = "mqadmin"

load_commands()

from mq.admin.cluster_commands import base_stats, day_totals  # noqa: E402,F401


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Administer mq (RocketMQ 4.x compatible) NameServers and brokers.",
        epilog=f"See '{PROG} <command> --help' (or '{PROG} help <command>') for the flags of a command.",
    )
    parser.add_argument("--version", action="version", version=version_text(PROG))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namesrvAddr", metavar="ADDR",
                        help="NameServer address list, host:port;host:port (default: $NAMESRV_ADDR)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="how long to wait for each answer (default 5)")
    common.add_argument("--access-key", metavar="AK", default=None,
                        help=f"ACL account to sign every request with (default: ${ENV_ACCESS_KEY})")
    common.add_argument("--secret-key", metavar="SK", default=None,
                        help=f"secret key of that account (default: ${ENV_SECRET_KEY})")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    helper = sub.add_parser("help", help="Show the help of a command")
    helper.add_argument("topic", nargs="?", metavar="command")
    completer = sub.add_parser("completion", help="Print a shell completion script (bash or zsh)",
                               description="Print a completion script for commands and flags: "
                                           f"source <({PROG} completion bash)")
    completer.add_argument("shell", choices=completion.SHELLS)
    parser.subparsers = {}  # type: ignore[attr-defined]
    for cmd in COMMANDS.values():
        p = parser.subparsers[cmd.name] = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, parents=[common])
        for flags, kwargs in cmd.options:
            p.add_argument(*flags, **kwargs)
    return parser


def check_one_of(parser: argparse.ArgumentParser, args) -> None:
    cmd = COMMANDS[args.command]
    for dests in cmd.one_of:
        given = [d for d in dests if getattr(args, d, None)]
        if len(given) != 1:
            flags = " or ".join(f"-{d[0]}/--{d}" for d in dests)
            parser.subparsers[args.command].error(f"give exactly one of {flags}")


@defer.inlineCallbacks
def run_command(reactor, args, out=None, err=None):
    """Run one parsed command on ``reactor``; its exit status (the text is written to ``out``/``err``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    output.use_terminal(is_terminal(out))
    addrs = (args.namesrvAddr or os.environ.get("NAMESRV_ADDR") or "").split(";")
    try:
        credentials = Credentials.from_options(getattr(args, "access_key", None), getattr(args, "secret_key", None))
    except ValueError as e:
        err.write(f"{PROG} {args.command}: {e} (--access-key/--secret-key or ${ENV_ACCESS_KEY}/${ENV_SECRET_KEY})\n")
        return EXIT_USAGE
    api = MQAdminAPI(reactor, addrs, timeout=args.timeout, credentials=credentials)
    # Long work draws a live line on stderr when that is a terminal; never beside --json.
    api.progress = Progress(err, live=not args.json and is_terminal(err), clock=reactor.seconds)
    cmd = COMMANDS[args.command]
    interval = (getattr(args, "interval", None) or cmd.every) if cmd.repeats else None
    rounds = getattr(args, "count", None)
    status = 0
    try:
        done = 0
        while True:
            try:
                result = yield cmd.run(api, args)
            finally:
                api.progress.end()
            text = result.render(args.json)
            if text:
                out.write(text if text.endswith("\n") else text + "\n")
                out.flush()  # a repeating command is read while it runs
            done += 1
            if interval is None or (rounds is not None and done >= rounds):
                break
            yield task.deferLater(reactor, interval, lambda: None)
    except AdminError as e:
        err.write(f"{PROG} {args.command}: {e}\n")
        status = e.exit_code
    except Exception as e:  # a bug or an unexpected answer: still one line, still a failure status
        err.write(f"{PROG} {args.command}: unexpected error: {type(e).__name__}: {e}\n")
        status = EXIT_FAILED
    finally:
        yield api.close()
    return status


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The parsed command line; ``help``, ``completion``, ``--version`` and usage errors print and raise
    SystemExit as argparse does (tests run commands in-process through this and ``run_command``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "help":
        if args.topic is None:
            parser.print_help()
        elif args.topic in COMMANDS or args.topic == "completion":
            parser.parse_args([args.topic, "--help"])
        else:
            parser.error(f"unknown command '{args.topic}'")
        sys.exit(0)
    if args.command == "completion":
        sys.stdout.write(completion.script(args.shell, parser, PROG))
        sys.exit(0)
    check_one_of(parser, args)
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)

    def run(reactor):
        d = run_command(reactor, args)

        def done(status):
            if status:
                raise SystemExit(status)

        return d.addCallback(done)

    task.react(run)


if __name__ == "__main__":
    # Run the imported module's main: the command modules registered into it, not into this __main__ copy.
    from mq.admin.cli import main as _main

    _main()
