"""``mqadmin completion bash|zsh``: the scripts are generated from the registry; the bash one is run through
bash's completion machinery (COMP_WORDS/COMP_CWORD and the function ``complete -F`` names)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from mq.admin import cli, completion
from tests.support.processes import child_env

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def script(shell: str) -> str:
    p = subprocess.run([sys.executable, "-m", "mq.admin.cli", "completion", shell], capture_output=True, text=True,
                       env=child_env({}), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def complete(bash_script: str, *lines_of_words):
    """COMPREPLY (sorted) for each command line; the last word is the one being completed."""
    prog = [bash_script, 'complete -p mqadmin | grep -q -- "-F _mqadmin" || exit 9']
    for words in lines_of_words:
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        prog.append(f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _mqadmin; "
                    'printf "%s\\n" "$(printf "%s\\n" "${COMPREPLY[@]}" | sort | tr "\\n" " ")"')
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(prog)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return [line.split() for line in p.stdout.splitlines()]


def visible_flags(name: str):
    sub = cli.build_parser().subparsers[name]
    return sorted(o for a in sub._actions if a.help != argparse.SUPPRESS for o in a.option_strings)


@pytest.fixture(scope="module")
def bash_script():
    return script("bash")


@needs_bash
def test_bash_completes_command_names(bash_script):
    first, helped, shells = complete(bash_script, ["mqadmin", "updateT"], ["mqadmin", "help", "cleanU"],
                                     ["mqadmin", "completion", ""])
    assert first == ["updateTopic", "updateTopicPerm"]
    assert helped == ["cleanUnusedTopic"]
    assert shells == ["bash", "zsh"]
    (everything,) = complete(bash_script, ["mqadmin", ""])
    assert set(everything) == set(cli.COMMANDS) | {"help", "completion"}


@needs_bash
def test_bash_completes_every_flag_of_every_command(bash_script):
    names = sorted(cli.COMMANDS)
    replies = complete(bash_script, *(["mqadmin", name, "-"] for name in names))
    for name, reply in zip(names, replies):
        assert reply == visible_flags(name), name
    assert "--count" not in replies[names.index("clusterList")]  # hidden from --help, hidden here


@needs_bash
def test_bash_completes_flag_values_it_knows(bash_script):
    method, boolean, prefix, after_topic, long_prefix = complete(
        bash_script,
        ["mqadmin", "updateOrderConf", "-t", "T", "-m", ""],
        ["mqadmin", "updateTopic", "-o", "t"],
        ["mqadmin", "updateTopic", "--t"],
        ["mqadmin", "updateTopic", "-t", ""],
        ["mqadmin", "printMsgByQueue", "--print"],
    )
    assert method == ["delete", "get", "put"]
    assert boolean == ["true"]
    assert prefix == ["--timeout", "--topic"]
    assert after_topic == []  # any name: left to the shell's default completion
    assert long_prefix == ["--printBody", "--printMsg"]


def test_zsh_script_lists_every_command_and_flag():
    text = script("zsh")
    assert text.startswith("#compdef mqadmin\n")
    for name in cli.COMMANDS:
        assert f"\n        '{name}:" in text and f"\n        {name})\n" in text, name
    block = text.split("\n        updateOrderConf)\n", 1)[1].split(";;", 1)[0]
    assert "{-m,--method}'[option type \\[eg. put|get|delete\\]]:value:(get put delete)'" in block
    assert "{-v,--orderConf}" in block and "--count" not in text.split("\n        clusterList)\n", 1)[1].split(";;", 1)[0]
    assert ":value:_files'" in text.split("\n        exportMetadata)\n", 1)[1].split(";;", 1)[0]  # -f filePath


def test_flags_come_from_the_registry():
    flags = completion.command_flags(cli.build_parser())
    assert set(flags) == set(cli.COMMANDS)
    help_text, update_topic = flags["updateTopic"]
    assert help_text == "Update or create topic"
    order = [f for f in update_topic if "-o" in f.names][0]
    assert order.values == ("true", "false") and order.takes_value
    json_flag = [f for f in update_topic if "--json" in f.names][0]
    assert not json_flag.takes_value


def test_completion_needs_a_known_shell(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["completion", "fish"])
    assert e.value.code == 2


def test_help_of_the_completion_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["help", "completion"])
    assert e.value.code == 0 and "mqadmin completion [-h] {bash,zsh}" in capsys.readouterr().out
