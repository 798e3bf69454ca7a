"""benchmarks/kernel_account.py: an ``strace -c`` table read into per-request figures and turn ratios."""

from benchmarks.kernel_account import account, parse_strace_summary

SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.400000          20     20000           sendto
 30.00    0.300000          15     20000           recvfrom
 20.00    0.200000          10     20000           epoll_wait
 10.00    0.100000          10     40000           epoll_ctl
  0.01    0.000100          50         2         1 futex
------ ----------- ----------- --------- --------- ----------------
100.00    1.000100                100002         1 total
"""


def test_an_extra_turn_per_read_shows():
    calls = parse_strace_summary(SUMMARY)
    assert calls == {"sendto": 20000, "recvfrom": 20000, "epoll_wait": 20000, "epoll_ctl": 40000, "futex": 2}
    a = account({**calls, "epoll_wait": 40000}, 160000)  # 8 requests per read, two turns per read
    assert (a["requests_per_read"], a["turns_per_read"], a["epoll_ctl_per_write"]) == (8.0, 2.0, 2.0)
    assert a["epoll_wait"] == 0.25 and a["syscalls"] == (120002 / 160000)
