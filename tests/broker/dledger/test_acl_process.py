"""A DLedger group with ``aclEnable``: its nodes sign their Raft messages with the broker's own (admin) account
and take only signed admin messages on the Raft port, so an unsigned or non-admin sender cannot depose the
leader with a forged vote; without the broker's account such a node refuses to start."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from mq.client.simple import create_topic_request, send_request
from mq.dledger import codec
from mq.dledger.messages import VoteRequest
from mq.remoting.codes import ResponseCode
from mq.remoting.serialization import encode_command
from tests.acl.test_acl_process import ACL, ADMIN, USER
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.dledger.test_transfer_process import metrics_of
from tests.broker.wire import call
from tests.support.processes import TWISTD, child_env, free_port, wait_until


def acl_home(tmp_path):
    home = tmp_path / "rocketmq"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL)
    return home


def term_of(group, node: str) -> int:
    found = re.search(r'^mq_dledger_term\{[^}]*node="%s"[^}]*\} (\S+)$' % node, metrics_of(group, node), re.M)
    assert found, f"no mq_dledger_term for {node}"
    return int(float(found.group(1)))


def forged_vote(group, dst: str, term: int, credentials=None) -> bool:
    """Send ``dst`` a vote request for ``term`` as if from another node, marked as a leadership transfer (which
    a follower must not ignore for having heard its leader lately); True if ``dst`` closed the connection."""
    src = next(n for n in group.ids if n != dst)
    command = codec.to_command(VoteRequest(src, dst, term, 10**9, term - 1, transfer=True), "dl-a")
    if credentials is not None:
        credentials.sign_request(command)
    with socket.create_connection(("127.0.0.1", group.raft_ports[dst]), timeout=10) as sock:
        sock.sendall(encode_command(command))
        sock.settimeout(5.0)  # a refusal closes it at once; 5 s covers a loaded machine
        try:
            return sock.recv(1) == b""
        except socket.timeout:  # still open: the message was taken
            return False


def test_signed_raft_messages_only(twistd, tmp_path):
    home = acl_home(tmp_path)
    conf = f"aclEnable=true\nrocketmqHome={home}\naccessKey={ADMIN.access_key}\nsecretKey={ADMIN.secret_key}\n"
    group = DLedgerCluster(twistd, tmp_path, extra_conf=conf, metrics=True).start_all()
    master = group.wait_master()  # an election: the nodes' signed votes passed each other's checks
    assert call(master, ADMIN.sign_request(create_topic_request("DlAcl", queues=1))).code == ResponseCode.SUCCESS
    sent = call(master, USER.sign_request(send_request("DlAcl", b"replicated under ACL", queue_id=0)))
    assert sent.code == ResponseCode.SUCCESS, sent.remark  # a majority wrote it: appends and answers are signed

    follower = next(n for n in group.ids if group.addr(n) != master)
    term = term_of(group, follower)
    seen = len(group.procs[follower].log_text())
    assert forged_vote(group, follower, term + 100)  # unsigned
    assert forged_vote(group, follower, term + 200, USER)  # signed, but not an admin account
    assert term_of(group, follower) < term + 100  # neither forged term taken (a real election may add one)
    wait_until(lambda: group.procs[follower].log_text()[seen:].count("refused by the ACL") >= 2, 10,
               what="the follower's log lines for both refusals")
    text = group.procs[follower].log_text()[seen:]
    assert "No accessKey is configured" in text and "Need admin permission for request code=53001" in text

    # the control: the same forged vote signed by an admin account is a Raft message like any other
    assert not forged_vote(group, follower, term + 300, ADMIN)
    wait_until(lambda: term_of(group, follower) >= term + 300, 10, what="the admin-signed vote's term adopted")


def test_acl_without_the_brokers_account_refuses_to_start(tmp_path):
    home = acl_home(tmp_path)
    conf = tmp_path / "n0.conf"
    conf.write_text(f"brokerName=dl-a\nenableDLegerCommitLog=true\ndLegerSelfId=n0\ndLegerPeers=n0-127.0.0.1:"
                    f"{free_port()}\naclEnable=true\nrocketmqHome={home}\n")
    result = subprocess.run([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "broker", "--config", str(conf),
                             "--port", str(free_port()), "--store", str(tmp_path / "store")],
                            capture_output=True, timeout=60, env=child_env(), cwd=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == (
        "broker: aclEnable with enableDLegerCommitLog needs the broker's own accessKey and secretKey (an admin "
        "account of the ACL file): its peers refuse Raft messages it does not sign")
