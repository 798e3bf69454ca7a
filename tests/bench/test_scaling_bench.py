"""benchmarks/scaling_bench.py: its options are bounded before any broker starts."""

import pytest

from benchmarks.scaling_bench import parse_args


def test_defaults_cover_the_issue_steps():
    args = parse_args([])
    assert args.connections == [1, 10, 100, 1000]
    assert args.queues == [8, 8000]
    assert args.parts == ["connections", "queues", "backlog", "cluster"]


@pytest.mark.parametrize("argv", [["--connections", "0"], ["--connections", "20000"], ["--queues", "1,x"],
                                  ["--parts", "connections,disk"], ["--backlog-gib", "0"],
                                  ["--backlog-gib", "100"], ["--paced-rate", "0"]])
def test_out_of_range_options_are_refused(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)
