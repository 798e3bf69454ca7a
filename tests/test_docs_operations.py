"""The operator's docs work as written: every flag a doc gives ``twistd <service>``, ``mqadmin <command>`` or
``mq-bench <role>`` is one the command takes, and the shell blocks of docs/operations.md and docs/admin.md marked
``<!-- doc-test: ... -->`` run with bash (``prints "text"...``: exit 0 and print each text; ``fails "text"``:
exit non-zero and print it), with ``twistd``, ``mqadmin`` and ``mq-bench`` from this checkout and free ports
in place of the well-known ones (a CI machine may be running anything on 9876)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mq.admin.cli import build_parser
from mq.broker.tap import Options as BrokerOptions
from mq.namesrv.tap import Options as NamesrvOptions
from mq.standalone import Options as StandaloneOptions
from tests.support.processes import REPO, TWISTD, child_env, free_port

DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
SERVICES = {"namesrv": NamesrvOptions, "broker": BrokerOptions, "mq": StandaloneOptions}
FLAG = re.compile(r"(?<![\w-])(--[a-zA-Z][\w-]*|-[a-zA-Z])(?![\w-])")


def command_lines(text: str):
    """Every command in a code block (fenced or indented) or a code span, continued lines joined."""
    text = text.replace("\\\n", " ")
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        yield from block.splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    yield from (line for line in prose.splitlines() if line.startswith("    "))
    yield from re.findall(r"`([^`\n]+)`", prose)


def flags_after(line: str, pattern: str):
    """(word, flags) for each ``pattern`` match: the flags given after it, up to a comment or a table cell."""
    for match in re.finditer(pattern, line):
        rest = re.split(r"\s#|\s\|\s|;\s|&&|\$\(", line[match.end():])[0]
        yield match.group(1), set(FLAG.findall(re.sub(r"'[^']*'|\"[^\"]*\"", "", rest)))


def service_flags(options_class) -> set:
    return set(FLAG.findall(str(options_class())))


def mqadmin_flags() -> dict:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    top = {s for a in parser._actions for s in a.option_strings}
    return {name: top | {s for a in sub._actions for s in a.option_strings} for name, sub in commands.choices.items()}


def bench_flags(role: str) -> set:
    out = subprocess.run([sys.executable, "-m", "mq.bench.cli", role, "--help"], capture_output=True, text=True,
                         timeout=60, env=child_env())
    return set(FLAG.findall(out.stdout)) | {"--version"}


def documented(pattern: str):
    for doc in DOCS:
        for line in command_lines(doc.read_text()):
            for word, flags in flags_after(line, pattern):
                yield doc.name, line, word, flags


def test_every_flag_the_docs_give_a_service_exists():
    known = {name: service_flags(cls) for name, cls in SERVICES.items()}
    seen = set()
    for doc, line, service, flags in documented(r"\btwistd(?:\s+(?:-n|-l\s*\S+|--\S+))*\s+(namesrv|broker|mq)\b"):
        seen.add(service)
        missing = flags - known[service]
        assert not missing, f"{doc}: `{line.strip()}` gives twistd {service} {sorted(missing)}, not in its --help"
    assert seen == set(SERVICES)


def test_every_flag_the_docs_give_mqadmin_and_mq_bench_exists():
    admin = mqadmin_flags()
    bench = {role: bench_flags(role) for role in ("producer", "consumer")}
    for doc, line, command, flags in documented(r"(?:^|\$\s|\s)mqadmin\s+([a-zA-Z]\w*)"):
        if command in admin:  # a command another part of the docs announces is checked by the mqadmin tests
            missing = flags - admin[command]
            assert not missing, f"{doc}: `{line.strip()}` gives mqadmin {command} {sorted(missing)}"
    for doc, line, role, flags in documented(r"\bmq-bench\s+(producer|consumer)\b"):
        missing = flags - bench[role]
        assert not missing, f"{doc}: `{line.strip()}` gives mq-bench {role} {sorted(missing)}"


BLOCK = re.compile(r"<!-- doc-test: (prints|fails) (.*?) -->\n```sh\n(.*?)```", re.S)
#: The docs whose marked blocks run, and how many each has (a marker that stops matching is noticed).
MARKED = {"operations.md": 5, "admin.md": 1}
BLOCKS = [(doc, *block) for doc in MARKED for block in BLOCK.findall((REPO / "docs" / doc).read_text())]
WELL_KNOWN_PORTS = ("9876", "10911", "10921")


def test_the_marked_blocks_are_found():
    assert {doc: sum(1 for b in BLOCKS if b[0] == doc) for doc in MARKED} == MARKED


def shims(bin_dir: Path) -> None:
    """``twistd``, ``mqadmin`` and ``mq-bench`` as installed, but running this checkout with this Python."""
    bin_dir.mkdir()
    for name, args in (("twistd", f"-c {shlex.quote(TWISTD)}"), ("mqadmin", "-m mq.admin.cli"),
                       ("mq-bench", "-m mq.bench.cli")):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {args} \"$@\"\n")
        path.chmod(0o755)


@pytest.mark.parametrize("doc, kind, expected, script", BLOCKS,
                         ids=[f"{b[0]}-block{i}" for i, b in enumerate(BLOCKS)])
def test_marked_block_runs_as_written(tmp_path, doc, kind, expected, script):
    shims(tmp_path / "bin")
    (tmp_path / "conf").symlink_to(REPO / "conf")
    for port in WELL_KNOWN_PORTS:
        free = str(free_port())
        script, expected = (re.sub(rf"\b{port}\b", free, text) for text in (script, expected))
    env = child_env({"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)})
    env.pop("NAMESRV_ADDR", None)
    try:
        out = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path, env=env)
    finally:
        for pidfile in tmp_path.glob("*.pid"):  # the daemons this block started, stopped however it ended
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError, FileNotFoundError):  # gone: it stopped, removing its pidfile
                pass
    output = out.stdout + out.stderr
    assert (out.returncode == 0) == (kind == "prints"), output
    assert "Traceback" not in output, output
    for text in re.findall(r'"([^"]*)"', expected):
        assert text in output, output
