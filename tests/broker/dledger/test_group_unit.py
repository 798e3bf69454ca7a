"""DLedgerGroup pieces without processes: the refusal codes of a failed proposal, and the bound on leadership
transfer requests waiting for their outcome."""

from __future__ import annotations

import collections
from types import SimpleNamespace

import pytest
from twisted.internet import task
from twisted.python.failure import Failure

from mq.broker.dledger.group import MAX_TRANSFER_WAITERS, DLedgerGroup, _proposal_failed
from mq.broker.dledger.settings import DLedgerSettings, parse_peers
from mq.broker.dledger.transport import RaftTransport
from mq.dledger import codec
from mq.dledger.driver import ProposalFailed
from mq.dledger.messages import AppendRequest, Entry, RoleChange
from mq.dledger.node import FOLLOWER, LEADER
from mq.remoting.codes import ResponseCode
from mq.store.results import PutMessageStatus


@pytest.mark.parametrize("reason, status", [
    ("NOT_LEADER", PutMessageStatus.SERVICE_NOT_AVAILABLE), ("TRANSFERRING", PutMessageStatus.SERVICE_NOT_AVAILABLE),
    ("LOST", PutMessageStatus.SERVICE_NOT_AVAILABLE), ("DISK_FULL", PutMessageStatus.SERVICE_NOT_AVAILABLE),
    ("PENDING_FULL", PutMessageStatus.OS_PAGECACHE_BUSY), ("TIMEOUT", PutMessageStatus.OS_PAGECACHE_BUSY),
])
def test_proposal_failures_map_as_dledger_does(reason, status):
    assert _proposal_failed(Failure(ProposalFailed(reason))).status is status


def test_transfer_requests_waiting_are_bounded():
    group = DLedgerGroup.__new__(DLedgerGroup)
    group.reactor = task.Clock()
    group.settings = SimpleNamespace(self_id="n0", peers=parse_peers("n0-h:1;n1-h:2;n2-h:3"))
    node = SimpleNamespace(role=LEADER, id="n0", leader="n0")
    group.driver = SimpleNamespace(node=node, transfer_leadership=lambda target: None)
    group._role_waiters = []
    results = [group.transfer("n1") for _ in range(MAX_TRANSFER_WAITERS + 1)]
    refused = []
    results[-1].addCallback(refused.append)
    assert refused == [(ResponseCode.SYSTEM_ERROR, "too many leadership transfer requests waiting")]
    answers = []
    for d in results[:-1]:
        d.addCallback(answers.append)
    for d in group._role_waiters[:]:  # what _role does when this node stops leading
        group._role_waiters.remove(d)
        d.callback(RoleChange(FOLLOWER, 3, "n1"))
    assert len(answers) == MAX_TRANSFER_WAITERS and answers[0][0] == ResponseCode.SUCCESS
    group.reactor.advance(5)  # their timers were cancelled: nothing fires twice
    assert group._role_waiters == []


def test_a_record_a_full_disk_kept_out_is_applied_once_there_is_room(tmp_path):
    from mq.broker.dledger.group import Entry
    from mq.store.mappedfile import DiskFullError
    from tests.broker.dledger.test_replicated_store import FakeReplicator, make_store, msg

    leader, follower = make_store(tmp_path / "a"), make_store(tmp_path / "b")
    rep = FakeReplicator()
    leader.replicator = rep
    for i in range(3):
        leader.put_message(msg(i))
    group = DLedgerGroup.__new__(DLedgerGroup)
    group.store, group.broken, group.applied_index, group._waiting_for_room = follower, None, 0, False
    group._unapplied, group._marks, group._local = collections.deque(), collections.deque(), {}
    real = follower.commitlog.position_for
    full = {"on": True}

    def position_for(size):
        if full["on"]:
            raise DiskFullError("no room")
        return real(size)

    follower.commitlog.position_for = position_for
    entries = [Entry(i + 1, 1, data) for i, (data, _r, _d) in enumerate(rep.proposed)]
    group._commit(entries[:2])
    assert group.applied_index == 0 and len(group._unapplied) == 2 and follower.get_max_phy_offset() == 0
    full["on"] = False
    group._commit(entries[2:])  # the held-back ones first, in order
    assert group.applied_index == 3 and not group._unapplied
    assert follower.get_max_phy_offset() == rep.end and list(group._marks) == [(3, rep.end)]


def test_start_opens_the_raft_log_with_the_brokers_cache_bytes(tmp_path, monkeypatch):
    from mq.broker.config import BrokerConfig
    from mq.broker.dledger import group as group_module
    from mq.broker.dledger.settings import DLedgerSettings
    from tests.broker.dledger.test_replicated_store import make_store

    config = BrokerConfig(store_path_root_dir=str(tmp_path), enable_d_leger_commit_log=True,
                          d_leger_peers="n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3", d_leger_self_id="n0",
                          d_leger_cache_bytes=12345)
    broker = SimpleNamespace(reactor=task.Clock(), store=make_store(tmp_path / "s"), config=config)
    group = DLedgerGroup(broker, DLedgerSettings.from_broker_config(config))
    seen = {}

    class Opened(Exception):
        pass

    def open_driver(*args, **kwargs):
        seen.update(kwargs, args=args)
        raise Opened()

    monkeypatch.setattr(group_module, "open_driver", open_driver)
    with pytest.raises(Opened):
        group.start()
    assert seen["cache_bytes"] == 12345
    # the broker's flush mode reaches the Raft log: ASYNC_FLUSH counts written entries, fsynced on the interval
    assert (seen["flush_each"], seen["flush_interval_ms"]) == (False, broker.store.config.flush_interval_commit_log)


def test_a_follower_far_behind_logs_its_catch_up_every_interval_then_once_done(log_events):
    from twisted.logger import formatEvent

    from mq.common.progress import LOG_EVERY
    from mq.dledger.config import RaftConfig
    from mq.dledger.messages import AppendRequest

    group = DLedgerGroup.__new__(DLedgerGroup)
    group.reactor = task.Clock()
    node = SimpleNamespace(role=FOLLOWER, id="n2", leader="n0", term=3, config=RaftConfig(max_pending=1000))
    received = []
    group.driver = SimpleNamespace(node=node, receive=received.append)
    group.applied_index, group.leader_commit, group._catching_up = 100, 0, None

    def lines():
        return [formatEvent(e) for e in log_events if "catching up" in formatEvent(e)]

    group._receive(AppendRequest("n0", "n2", 2, 0, 0, (), 50_000))  # an older term's commit: not the leader's
    group._receive(AppendRequest("n0", "n2", 3, 0, 0, (), 900))
    assert len(received) == 2 and group.leader_commit == 900
    group.report_catch_up()
    assert group._catching_up is None  # 800 behind: within max_pending, nothing to say
    group._receive(AppendRequest("n0", "n2", 3, 0, 0, (), 20_100))
    group.report_catch_up()
    group.reactor.advance(LOG_EVERY / 2)
    group.applied_index = 5_100
    group.report_catch_up()
    assert lines() == []  # not yet an interval
    group.reactor.advance(LOG_EVERY / 2)
    group.applied_index = 10_100
    group.report_catch_up()
    assert lines() == ["DLedger n2: catching up with leader n0: 10,000 of 20,000 entries (50%), 10,000 to go, "
                       "2,000 entries/s"]
    node.role, node.leader = "CANDIDATE", None  # an election does not end it
    group.report_catch_up()
    assert group._catching_up is not None
    node.role, node.leader = FOLLOWER, "n1"
    group.reactor.advance(1)
    group.applied_index = 19_600  # within max_pending of the commit index
    group.report_catch_up()
    assert lines()[1:] == ["DLedger n2: catching up with leader n0: done, 19,500 entries in 6.0 s"]
    assert group._catching_up is None
    group.reactor.advance(LOG_EVERY)
    group.report_catch_up()
    assert len(lines()) == 2


def test_a_leaders_same_entries_to_two_followers_are_encoded_once(monkeypatch):
    peers = parse_peers("n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3")
    transport = RaftTransport(task.Clock(), DLedgerSettings("dl-a", "n0", peers, None), lambda m: None,
                              lambda *a: None)
    sent = []
    transport._send = lambda node, cmd: sent.append((node, cmd))
    encoded = []
    real = codec.encode_entries
    monkeypatch.setattr(codec, "encode_entries", lambda entries: (encoded.append(len(entries)), real(entries))[1])
    entries = tuple(Entry(5 + k, 2, b"record %d" % k) for k in range(3))
    for dst in ("n1", "n2"):
        transport.send(AppendRequest("n0", dst, 2, 4, 2, entries, 4))
    transport.send(AppendRequest("n0", "n1", 2, 4, 2, tuple(Entry(e.index, e.term, e.body) for e in entries), 4))
    assert encoded == [3, 3]  # equal but other objects (not from the log): encoded again, to be safe
    for node, cmd in sent:
        assert codec.from_command(cmd)[1] == AppendRequest("n0", node, 2, 4, 2, entries, 4)


def test_state_files_count_their_changes(tmp_path):
    from mq.broker.offset.consumer_offset import ConsumerOffsetManager

    manager = ConsumerOffsetManager(SimpleNamespace(config_dir=str(tmp_path)))
    manager.commit("g", "t", 0, 5)
    manager.commit("g", "t", 0, 5)  # no change: not counted
    manager.commit("g", "t", 1, 7)
    assert manager.changes == 2
    manager.persist()
    assert manager.changes == 2 and not manager.dirty


def test_a_role_change_registers_with_the_nameservers_at_once(tmp_path, monkeypatch):
    """Not on the next ``registerNameServerPeriod`` tick: the process tests register every 5 s, which is too
    often for them to tell the difference."""
    from mq.broker.config import BrokerConfig
    from tests.broker.dledger.test_replicated_store import make_store

    config = BrokerConfig(store_path_root_dir=str(tmp_path), enable_d_leger_commit_log=True,
                          d_leger_peers="n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3", d_leger_self_id="n2")
    registered = []
    broker = SimpleNamespace(reactor=task.Clock(), store=make_store(tmp_path / "s"), config=config, running=True,
                             slave_sync=None, master_addr=None,
                             register_broker_all=lambda: registered.append((config.broker_id, config.broker_role.name)))
    group = DLedgerGroup(broker, DLedgerSettings.from_broker_config(config))
    group.driver = SimpleNamespace(node=SimpleNamespace(term=4))
    monkeypatch.setattr(group, "_master_services", lambda run: None)
    group._become_master()
    assert registered == [(0, "SYNC_MASTER")]
    group._become_slave()
    assert registered == [(0, "SYNC_MASTER"), (3, "SLAVE")]  # RocketMQ's id for n2: 2 + 1
