"""The store's DLedger hook: puts encoded at the replicator's predicted offsets (file-end padding included),
nothing written until committed, and committed records landing byte for byte where the leader put them."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from mq.common.message import MessageExtBrokerInner
from mq.common.message_record import decode_message_ext
from mq.store.config import MessageStoreConfig
from mq.store.mappedfile import StoreError
from mq.store.replicated import next_position
from mq.store.results import PutMessageResult, PutMessageStatus
from mq.store.store import MessageStore


class FakeReplicator:
    def refusal(self):
        return self.refuse

    def propose(self, data, result, local=None):
        d = defer.Deferred()
        self.proposed.append((data, result, d))
        self.local.append(local)
        return d

    local: list

    def __init__(self):
        self.end = 0
        self.queue_offsets = {}
        self.proposed = []
        self.local = []
        self.refuse = None


def make_store(path, file_size=4096, index=False):
    cfg = MessageStoreConfig(store_path_root_dir=str(path), mapped_file_size_commit_log=file_size,
                             mapped_file_size_consume_queue=20000, message_index_enable=index,
                             commit_log_prefault_ahead=0)
    store = MessageStore(cfg, task.Clock(), run_blocking=defer.maybeDeferred)
    store.start()
    return store


def msg(i, queue_id=0):
    return MessageExtBrokerInner(topic="RepT", body=b"body-%03d" % i + b"x" * 300, queue_id=queue_id,
                                 properties={"TAGS": "t"}, born_host=("127.0.0.1", 1), born_timestamp=1)


def test_next_position_follows_the_commitlog_rule():
    assert next_position(0, 100, 4096) == 0
    assert next_position(4096, 100, 4096) == 4096
    assert next_position(3990, 100, 4096) == 4096  # 100 + the 8-byte blank do not fit
    assert next_position(3988, 100, 4096) == 3988


def test_puts_wait_for_commit_and_land_identically_on_every_node(tmp_path):
    leader, follower = make_store(tmp_path / "a"), make_store(tmp_path / "b")
    rep = FakeReplicator()
    leader.replicator = rep
    results = []
    for i in range(30):  # ~340-byte records in 4 KiB files: several roll-overs with padding
        leader.put_message(msg(i, i % 2)).addCallback(results.append)
    batch = [msg(100 + i, 1) for i in range(3)]
    leader.put_messages(batch).addCallback(results.append)
    assert results == [] and leader.get_max_phy_offset() == 0  # nothing written before it is committed
    assert rep.queue_offsets == {("RepT", 0): 15, ("RepT", 1): 18}
    for data, result, d in rep.proposed:
        for store in (leader, follower):
            store.append_committed(data)
        d.callback(PutMessageResult(PutMessageStatus.PUT_OK, result))
    assert [r.status for r in results] == [PutMessageStatus.PUT_OK] * 31
    assert results[-1].append_result.msg_num == 3
    assert leader.get_max_phy_offset() == rep.end == follower.get_max_phy_offset()
    assert leader.commitlog.files.files[0].start == 0 and len(leader.commitlog.files.files) > 2
    for phy in (r.append_result.wrote_offset for r in results):
        assert leader.look_message_by_offset(phy) == follower.look_message_by_offset(phy) is not None
    assert leader.get_max_offset_in_queue("RepT", 1) == 18 == follower.get_max_offset_in_queue("RepT", 1)
    a = b"".join(bytes(f.mm[: f.size]) for f in leader.commitlog.files.files)
    b = b"".join(bytes(f.mm[: f.size]) for f in follower.commitlog.files.files)
    assert a == b


def test_a_refusal_and_a_misplaced_entry(tmp_path):
    store = make_store(tmp_path / "a")
    rep = FakeReplicator()
    store.replicator = rep
    rep.refuse = PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="not the DLedger leader")
    out = []
    store.put_message(msg(1)).addCallback(out.append)
    assert out[0].status is PutMessageStatus.SERVICE_NOT_AVAILABLE and rep.proposed == [] and rep.end == 0
    rep.refuse = None
    store.put_message(msg(2))
    other = make_store(tmp_path / "b")
    other.replicator = FakeReplicator()
    other.replicator.end = 4096  # as if its files were another size: the leader's offsets do not fit here
    other.put_message(msg(3))
    with pytest.raises(StoreError, match="share mappedFileSizeCommitLog"):
        store.append_committed(other.replicator.proposed[0][0])


def test_the_leader_dispatches_its_own_records_from_their_fields_as_a_follower_parsing_them(tmp_path):
    leader, follower = make_store(tmp_path / "a", index=True), make_store(tmp_path / "b", index=True)
    rep = FakeReplicator()
    leader.replicator = rep
    for i in range(30):
        inner = msg(i, i % 2)
        inner.properties["KEYS"] = f"k{i}"
        inner.properties["UNIQ_KEY"] = f"U{i:04d}"
        leader.put_message(inner)
    leader.put_messages([msg(100 + i, 1) for i in range(3)])  # a batch: no fields kept, parsed
    assert [x is not None for x in rep.local] == [True] * 30 + [False]
    pending = False  # records written and not yet dispatched, as DLedgerGroup._apply keeps them
    direct = 0
    for k, ((data, _result, _d), local) in enumerate(zip(rep.proposed, rep.local)):
        if k == 7 or local is None:  # written, its dispatch left for later
            leader.append_committed(data, dispatch=False)
            pending = True
        elif k == 8:  # an earlier record waits for its dispatch: written only, parsed with it
            assert not leader.append_committed_local(data, local)
        else:
            if pending:
                leader.dispatch_appended()
            pending = not leader.append_committed_local(data, local)  # not after a file's padding either
            direct += not pending
        follower.append_committed(data)
    leader.dispatch_appended()
    assert direct >= 20
    assert leader.reput_offset == leader.get_max_phy_offset() == follower.get_max_phy_offset()
    assert leader.queue_offsets == follower.queue_offsets == {("RepT", 0): 15, ("RepT", 1): 18}
    for q in (0, 1):
        cq = [bytes(f.mm[: f.size]) for f in leader.queues.find_or_create("RepT", q).files.files]
        assert cq == [bytes(f.mm[: f.size]) for f in follower.queues.find_or_create("RepT", q).files.files]
    for store in (leader, follower):
        for key, body in (("k8", b"body-008"), ("k12", b"body-012"), ("U0020", b"body-020")):
            offsets = store.index.query("RepT", key, 10, 0, 2**62)[0]
            assert [decode_message_ext(store.look_message_by_offset(o)).body[:8] for o in offsets] == [body]
