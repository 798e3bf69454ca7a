"""ACL over real processes: ``twistd broker --acl`` with a plain_acl.yml under rocketmqHome, this project's
client and the official C++ client signing, and every kind of refusal as a client sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import pytest_twisted

from mq.acl.signing import Credentials
from mq.client import ConsumeConcurrentlyStatus, ConsumeFromWhere, Producer, PushConsumer, make_message
from mq.client.model import SendStatus
from mq.client.simple import create_topic_request, pull_request, send_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import FLAG_ONEWAY, ResponseCode
from tests.broker.cluster import broker_starter, processes, start_namesrv
from tests.broker.wire import Wire, call
from tests.interop.test_cpp_client import CPP_PYTHON, SCRIPT, PushConsumerProcess
from tests.support.polling import poll
from tests.support.processes import REPO, TWISTD, child_env, free_port, wait_until

ACL = """\
globalWhiteRemoteAddresses:
accounts:
  - accessKey: adminAccount
    secretKey: adminSecret1
    admin: true
  - accessKey: userAccount
    secretKey: userSecret1
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: SUB
    topicPerms:
      - AclDenied=DENY
  - accessKey: whiteAccount
    secretKey: whiteSecret1
    whiteRemoteAddress: 127.0.0.1
"""

ADMIN = Credentials("adminAccount", "adminSecret1")
USER = Credentials("userAccount", "userSecret1")
EXC = "org.apache.rocketmq.acl.common.AclException: "


def start_acl_cluster(twistd, tmp):
    """A NameServer and a ``--acl`` broker whose rocketmqHome holds ``ACL``: (namesrv, broker, home)."""
    home = tmp / "rocketmq"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL)
    namesrv = start_namesrv(twistd, tmp)
    broker = broker_starter(twistd, tmp, namesrv, f"rocketmqHome={home}\n")("--acl", name="acl-broker")
    return namesrv, broker, home


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acl")
    with processes(tmp) as twistd:
        namesrv, broker, home = start_acl_cluster(twistd, tmp)
        for topic in ("AclOpen", "AclDenied", "AclClient", "AclCpp"):
            assert call(broker.addr, ADMIN.sign_request(create_topic_request(topic, queues=2))).code == 0
        yield namesrv, broker, home


def pull_all(addr, topic, queues=2):
    """Every stored message of ``topic``, pulled with the admin account (no per-resource checks)."""
    out = []
    with Wire(addr) as w:
        for qid in range(queues):
            offset = 0
            while True:
                r = w.call(ADMIN.sign_request(pull_request("acl_check", topic, qid, offset)))
                if r.code != ResponseCode.SUCCESS:
                    assert r.code != ResponseCode.SYSTEM_ERROR, r.remark
                    break
                out += decode_messages(r.body)
                offset = int(r.ext_fields["nextBeginOffset"])
    return out


def send(topic: str, body: bytes = b"x", **kwargs):
    return send_request(topic, body, queue_id=0, **kwargs)


def refused(response, message):
    assert response.code == ResponseCode.SYSTEM_ERROR == 1
    assert response.remark == EXC + message


def test_unsigned_wrongly_signed_and_unknown_accounts_are_refused(acl_cluster):
    _, broker, _ = acl_cluster
    refused(call(broker.addr, send("AclOpen")), "No accessKey is configured")
    refused(call(broker.addr, Credentials("userAccount", "notTheSecret").sign_request(send("AclOpen"))),
            "Check signature failed for accessKey=userAccount")
    refused(call(broker.addr, Credentials("nobodyAccount", "userSecret1").sign_request(send("AclOpen"))),
            "No acl config for nobodyAccount")
    tampered = USER.sign_request(send("AclOpen"))
    tampered.body = b"changed after signing"
    refused(call(broker.addr, tampered), "Check signature failed for accessKey=userAccount")
    # The VIP port (listenPort - 2) checks too.
    port = int(broker.addr.rsplit(":", 1)[1])
    refused(call(f"127.0.0.1:{port - 2}", send("AclOpen")), "No accessKey is configured")
    assert call(f"127.0.0.1:{port - 2}", USER.sign_request(send("AclOpen"))).code == 0


def test_admin_codes_and_deny_perms(acl_cluster):
    _, broker, _ = acl_cluster
    refused(call(broker.addr, USER.sign_request(create_topic_request("AclNew"))),
            "Need admin permission for request code=17, but accessKey=userAccount is not")
    refused(call(broker.addr, USER.sign_request(send("AclDenied"))), "No default permission for topic:AclDenied")
    assert call(broker.addr, USER.sign_request(send("AclOpen"))).code == 0


def test_refused_oneway_is_dropped_and_nothing_is_stored(acl_cluster):
    _, broker, _ = acl_cluster
    before = len(pull_all(broker.addr, "AclDenied"))
    with Wire(broker.addr) as w:
        oneway = send("AclDenied", b"oneway")
        oneway.flag |= FLAG_ONEWAY
        w.send(oneway)
        # The next answer on this connection is to the next request: the oneway got none.
        refused(w.call(send("AclDenied")), "No accessKey is configured")
    assert len(pull_all(broker.addr, "AclDenied")) == before


def test_account_white_address_passes_unsigned(acl_cluster):
    _, broker, _ = acl_cluster
    request = send("AclDenied", b"white")
    request.ext_fields["AccessKey"] = "whiteAccount"
    assert call(broker.addr, request).code == 0


def replace_file(path, text: str) -> None:
    """Write a new version whole (temporary file, then rename): a truncate-then-write could be read empty by the
    broker's watcher between the two, and an empty file is a valid one with no accounts."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_file_changes_apply_without_a_restart(acl_cluster):
    _, broker, home = acl_cluster
    path = home / "conf" / "plain_acl.yml"
    late = Credentials("lateAccount", "lateSecret1")
    refused(call(broker.addr, late.sign_request(send("AclOpen"))), "No acl config for lateAccount")
    try:
        replace_file(path, ACL.replace("globalWhiteRemoteAddresses:\n", "globalWhiteRemoteAddresses: [127.0.0.*]\n")
                     + "  - accessKey: lateAccount\n    secretKey: lateSecret1\n    defaultTopicPerm: PUB\n")
        wait_until(lambda: call(broker.addr, late.sign_request(send("AclOpen"))).code == 0, 20,
                   what="the new account accepted")
        # The global white list lets anything from 127.0.0.1 through, unsigned and admin codes included.
        assert call(broker.addr, send("AclDenied")).code == 0
        assert call(broker.addr, create_topic_request("AclWhite")).code == 0
        # A broken edit keeps what works.
        replace_file(path, "accounts: [\n")
        wait_until(lambda: "ACL files not reloaded" in broker.log_text(), 20, what="the bad edit logged")
        assert call(broker.addr, late.sign_request(send("AclOpen"))).code == 0
    finally:
        replace_file(path, ACL)
    wait_until(lambda: call(broker.addr, send("AclOpen")).code == 1, 20, what="the original file back in force")


@pytest_twisted.inlineCallbacks
def test_this_projects_signed_producer_and_consumer(acl_cluster):
    namesrv, broker, _ = acl_cluster
    got = []

    def listener(msgs, context):
        got.extend(m.body for m in msgs)
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    producer = Producer("AclClientPG", namesrv.addr, instance_name="acl-signed", credentials=USER)
    consumer = PushConsumer("AclClientCG", namesrv.addr, instance_name="acl-signed", credentials=USER,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe("AclClient", "*")
    consumer.register_message_listener(listener)
    producer.start()
    consumer.start()
    try:
        for i in range(5):
            result = yield producer.send(make_message("AclClient", f"m{i}"))
            assert result.status is SendStatus.SEND_OK
        yield poll(lambda: sorted(got), lambda g: len(g) >= 5, 30, what="the signed consumer got every message")
        assert sorted(got) == [f"m{i}".encode() for i in range(5)]
    finally:
        yield consumer.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_a_traced_signed_producer_s_trace_messages_are_stored(acl_cluster):
    """The trace producer signs with the host client's account and writes its headers in RocketMQ's binary
    layout: the ACL broker checks the signature (no topic permission needed for the trace topic) and stores
    every record."""
    namesrv, broker, _ = acl_cluster
    producer = Producer("AclTracePG", namesrv.addr, instance_name="acl-traced", credentials=USER,
                        enable_msg_trace=True)
    producer.start()
    try:
        ids = []
        for i in range(3):
            result = yield producer.send(make_message("AclClient", f"t{i}"))
            ids.append(result.msg_id)
    finally:
        yield producer.shutdown()  # sends the queued records
    dispatcher = producer.tracer.dispatcher
    assert dispatcher.sent_messages >= 1 and dispatcher.failed_messages == 0
    stored = pull_all(broker.addr, "RMQ_SYS_TRACE_TOPIC", queues=4)  # auto-created with 4
    assert set(ids) <= {k for m in stored for k in m.keys}


def test_bad_file_stops_the_start_with_one_line(tmp_path):
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text("accounts:\n  - {accessKey: short, secretKey: longEnough}\n")
    # One line on stderr and exit status 1, before any log file exists (a usage error exits 0 on some Twisted
    # releases: Twisted 26.4 on Python 3.9).
    result = subprocess.run([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "broker", "--acl", "--port",
                             str(free_port()), "--store", str(tmp_path / "store")],
                            capture_output=True, timeout=60, env=child_env({"ROCKETMQ_HOME": str(home)}),
                            cwd=str(tmp_path))
    assert result.returncode == 1
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last == (f"broker: ACL: {home}/conf/plain_acl.yml: account 'short': accessKey must be longer than "
                    "6 characters")
    assert b"Traceback" not in result.stdout + result.stderr


# -- the official C++ client -------------------------------------------------------------------------------


def cpp_env(access_key, secret_key):
    return child_env({"MQ_CPP_ACCESS_KEY": access_key, "MQ_CPP_SECRET_KEY": secret_key})


def cpp_produce(namesrv, topic, bodies, env):
    """Run the C++ producer; (return code, stdout, its own log file's text: ``$HOME/logs/rocketmq-cpp/<pid>_...``).

    HOME is a directory of its own: under the real one, a file left by an earlier process with the same pid (pids
    are reused over a long CI run, and ``~/logs`` outlives it) was read instead of this run's."""
    specs = [{"body": b, "tags": "t"} for b in bodies]
    home = tempfile.mkdtemp(prefix="mq-cpp-home-")
    proc = subprocess.Popen([CPP_PYTHON, str(SCRIPT), "produce", namesrv.addr, topic, "sync", json.dumps(specs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env, HOME=home), cwd=str(REPO))
    out, err = proc.communicate(timeout=90)
    log = os.path.join(home, "logs", "rocketmq-cpp", f"{proc.pid}_rocketmq-cpp.log.0")
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    shutil.rmtree(home, ignore_errors=True)
    assert proc.returncode == 0 or err, "a failing C++ client says why"
    return proc.returncode, out.decode(errors="replace"), text


@pytest.mark.skipif(CPP_PYTHON is None, reason="no interpreter with the C++ client (pip install rocketmq==0.4.4)")
def test_cpp_client_with_session_credentials_produces_and_consumes(acl_cluster, monkeypatch):
    namesrv, broker, _ = acl_cluster
    code, out, log = cpp_produce(namesrv, "AclCpp", ["c0", "c1", "c2"], cpp_env("userAccount", "userSecret1"))
    assert code == 0, log[-2000:]
    assert [json.loads(line)["status"] for line in out.splitlines() if line.startswith("{")] == ["OK"] * 3
    assert "AclException" not in log
    assert sorted(m.body for m in pull_all(broker.addr, "AclCpp")) == [b"c0", b"c1", b"c2"]
    monkeypatch.setenv("MQ_CPP_ACCESS_KEY", "userAccount")
    monkeypatch.setenv("MQ_CPP_SECRET_KEY", "userSecret1")
    consumer = PushConsumerProcess(namesrv.addr, "AclCpp", "AclCppGroup", "CLUSTERING")
    try:
        wait_until(lambda: {"c0", "c1", "c2"} <= set(consumer.bodies()), 60, 0.2,
                   what="the C++ consumer receiving c0, c1, c2")
    finally:
        consumer.stop()


@pytest.mark.skipif(CPP_PYTHON is None, reason="no interpreter with the C++ client (pip install rocketmq==0.4.4)")
def test_cpp_client_with_a_wrong_secret_is_refused(acl_cluster):
    namesrv, broker, _ = acl_cluster
    before = len(pull_all(broker.addr, "AclCpp"))
    code, out, log = cpp_produce(namesrv, "AclCpp", ["wrong"], cpp_env("userAccount", "notTheSecret"))
    assert code != 0
    # The C++ client reports "No route info" in the end; its log has the broker's answer to each try.
    assert "remark:org.apache.rocketmq.acl.common.AclException: Check signature failed for accessKey=userAccount, " \
           "error code:1" in log
    assert len(pull_all(broker.addr, "AclCpp")) == before
