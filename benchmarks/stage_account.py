"""Split py-spy samples of the broker's send path into the stages of a request (docs/performance.md's account).

    py-spy record -r 500 --function -f raw -o /tmp/replay.raw -- python -m benchmarks.send_path --count 30000
    python -m benchmarks.stage_account /tmp/replay.raw [--total-us 70] [--root Replay.run]

Each sample is charged to ONE stage: Deferred bookkeeping when the sampled frame is Twisted's ``defer.py``,
otherwise the innermost frame of the stack that names a stage. ``--total-us`` (the path's measured CPU µs per
message) turns the shares into µs.
"""

from __future__ import annotations

import argparse
import collections
import sys
from typing import List, Tuple

#: (stage, frame name prefixes), innermost match wins; order only breaks ties inside one frame.
STAGES: List[Tuple[str, Tuple[str, ...]]] = [
    ("JSON header decode (decode_frame)", ("decode_frame ",)),
    ("typed header (decode_short)", ("CommandHeader.decode_short ", "decode (<string>")),
    ("properties (parse, stored string)", ("string_to_properties ", "stored_properties ")),
    ("batch body decode", ("decode_batch ",)),
    ("send checks (topic, permissions, queue)", ("SendMessageProcessor.check ", "SendMessageProcessor._check_body ")),
    ("retry/DLQ/delay/transaction hooks", ("BrokerService.prepare_inner ",)),
    ("store: record encode (+CRC)", ("encode_records ",)),
    ("store: index (UNIQ_KEY hash)", ("IndexService.build", "IndexFile.put_hash")),
    ("store: consume queue", ("ConsumeQueue.put",)),
    ("store: dispatch (tags code, listeners)", ("Dispatcher.dispatch",)),
    ("store: CommitLog write", ("CommitLog.write ", "CommitLog.position_for ")),
    ("store: put_message (rest)", ("MessageStore.put_message",)),
    ("response: msgId", ("AppendMessageResult.msg_id",)),
    ("response encode (JSON header, frame)", ("encode_command ",)),
    ("metrics (histogram, per-topic counters)", ("FastHistogram.observe ", "BrokerStats.")),
    ("transport write", ("StringTransport.write ", "FileDescriptor.write ", "Connection.write")),
    ("send processor (rest: inner message, answer)", ("SendMessageProcessor.",)),
    ("frame cut, dispatch, respond", ("RemotingProtocol.", "RequestDispatcher.")),
]


def stage_of(frames: List[str]) -> str:
    if "twisted/internet/defer.py" in frames[-1]:
        return "Deferreds (add/run callbacks)"
    for frame in reversed(frames):
        for stage, prefixes in STAGES:
            if frame.startswith(prefixes):
                return stage
    return "other"


def account(path: str, root: str) -> Tuple[collections.Counter, int]:
    stages: collections.Counter = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            if not any(root in fr for fr in frames):
                continue
            n = int(count)
            total += n
            stages[stage_of(frames)] += n
    return stages, total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", help="py-spy --function -f raw output")
    p.add_argument("--total-us", type=float, default=None, help="measured CPU µs per message of the path")
    p.add_argument("--root", default="Replay.run", help="count only samples under this frame")
    args = p.parse_args()
    stages, total = account(args.raw, args.root)
    print(f"| stage | share | {'µs per message |' if args.total_us else ''}")
    print(f"|---|---|{'---|' if args.total_us else ''}")
    for stage, n in stages.most_common():
        us = f" {args.total_us * n / total:.1f} |" if args.total_us else ""
        print(f"| {stage} | {100 * n / total:.1f}% |{us}")
    print(f"\n{total} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
