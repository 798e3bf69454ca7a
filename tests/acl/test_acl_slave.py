"""A slave of an ACL master: its sync requests are refused unsigned and pass signed with accessKey/secretKey."""

from __future__ import annotations

import pytest

from mq.acl.signing import Credentials
from mq.client.simple import create_topic_request
from mq.remoting.codes import RequestCode
from mq.remoting.command import RemotingCommand
from tests.broker.test_ha_integration import HA_CONF, HaCluster
from tests.broker.wire import call
from tests.support.processes import wait_until

ACL = """\
accounts:
  - accessKey: adminAccount
    secretKey: adminSecret1
    admin: true
  - accessKey: slaveAccount
    secretKey: slaveSecret1
"""


@pytest.fixture
def cluster(twistd, tmp_path):
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL)
    c = HaCluster(twistd, tmp_path)
    c.conf["master"].write_text(HA_CONF + f"aclEnable=true\nrocketmqHome={home}\n")
    return c


def test_slave_signs_its_sync_with_its_own_account(cluster):
    cluster.start_both()
    master = cluster.addr("master")
    admin = Credentials("adminAccount", "adminSecret1")
    assert call(master, admin.sign_request(create_topic_request("AclHaTopic", queues=2))).code == 0
    slave = cluster.procs["slave"]
    slave.wait_log("org.apache.rocketmq.acl.common.AclException: No accessKey is configured", 20)
    topics = cluster.store("slave") / "config" / "topics.json"
    assert "AclHaTopic" not in (topics.read_text() if topics.exists() else "")
    slave.stop(timeout=20)

    cluster.conf["slave"].write_text(HA_CONF + "accessKey=slaveAccount\nsecretKey=slaveSecret1\n")
    cluster.start("slave")
    wait_until(lambda: topics.exists() and "AclHaTopic" in topics.read_text(), 30,
               what="the master's topic synchronised to the slave")
    # The slave does not show its secret to anyone asking for its config.
    body = call(cluster.addr("slave"), RemotingCommand.request(RequestCode.GET_BROKER_CONFIG)).body.decode()
    assert "secretKey=******" in body and "slaveSecret1" not in body
