"""The live progress line of long mqadmin work: drawn on a terminal only, throttled, wiped before the result."""

from __future__ import annotations

import io

from twisted.internet import task

from mq.admin import progress
from mq.admin.progress import Progress
from tests.admin.conftest import mqadmin_on_terminal
from tests.admin.test_broker_commands import create_topic, send


def live(clock: task.Clock) -> "tuple[Progress, io.StringIO]":
    out = io.StringIO()
    return Progress(out, live=True, clock=clock.seconds), out


def test_first_step_is_drawn_then_at_most_every_interval():
    clock = task.Clock()
    p, out = live(clock)
    p.begin("printMsg: messages read", 1000)
    p.advance(10)
    assert out.getvalue() == "\rprintMsg: messages read: 10/1,000 (1%)\x1b[K"
    clock.advance(progress.EVERY / 2)
    p.advance(10)
    assert out.getvalue().count("\r") == 1  # too soon: not redrawn
    clock.advance(progress.EVERY)
    p.advance(480)
    assert out.getvalue().endswith("\rprintMsg: messages read: 500/1,000 (50%), 1,667/s\x1b[K")


def test_end_wipes_the_line_once_and_only_if_drawn():
    clock = task.Clock()
    p, out = live(clock)
    p.end()
    assert out.getvalue() == ""
    p.begin("reset: queues done", 2)
    p.advance()
    p.end()
    p.end()
    assert out.getvalue().endswith("\r\x1b[K") and out.getvalue().count("\r\x1b[K") == 1


def test_counting_before_begin_draws_nothing():
    clock = task.Clock()
    p, out = live(clock)
    p.advance(32)  # consumeMessage reads through the same helper as printMsg, without a progress line
    p.end()
    assert out.getvalue() == ""


def test_unknown_or_growing_total():
    clock = task.Clock()
    p, _ = live(clock)
    p.begin("read")
    p.advance(5)
    assert p.line() == "read: 5"
    p.add_total(10)
    assert p.line() == "read: 5/10 (50%)"


def test_not_a_terminal_draws_nothing():
    out = io.StringIO()  # isatty() is False
    p = Progress(out)
    p.begin("x", 3)
    p.advance(3)
    p.end()
    assert not p.live and out.getvalue() == ""
    assert not progress.silent().live


def _mqadmin_with_terminal_stderr(broker, *args) -> "tuple[int, str, str]":
    """``mqadmin`` with stdout a pipe and stderr a pseudo-terminal; (status, stdout, what the terminal got)."""
    run = mqadmin_on_terminal(*args, namesrv=broker.namesrv, terminal="stderr")
    return run.code, run.out, run.err


def test_print_msg_shows_progress_on_a_terminal_only(broker):
    create_topic(broker, "ProgressTopic", 1)
    for i in range(3):
        send(broker, "ProgressTopic", f"p{i}")
    code, out, terminal = _mqadmin_with_terminal_stderr(broker, "printMsg", "-t", "ProgressTopic")
    assert code == 0, terminal
    assert "printMsg: messages read: 3/3 (100%)" in terminal and terminal.endswith("\r\x1b[K")
    assert "\x1b" not in out and out.count("Message Body") == 3  # the result itself is untouched
    code, out, terminal = _mqadmin_with_terminal_stderr(broker, "printMsg", "-t", "ProgressTopic", "--json")
    assert code == 0 and terminal == ""
    create_topic(broker, "ProgressQueues", 4)
    code, out, terminal = _mqadmin_with_terminal_stderr(broker, "resetOffsetByTime", "-g", "ProgressGroup",
                                                        "-t", "ProgressQueues", "-s", "now")
    assert code == 0, terminal
    # no consumer online: the tool resets the 4 queues one by one, the first drawn at once (later ones at most
    # every 0.2 s)
    assert "reset: queues done: 1/4 (25%)" in terminal
    code, out, terminal = _mqadmin_with_terminal_stderr(broker, "consumeMessage", "-t", "ProgressTopic")
    assert code == 0 and terminal == "" and "Consumed 3 message(s)." in out  # short work: no line
