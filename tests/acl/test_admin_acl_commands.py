"""``mqadmin`` ACL commands end to end against a real ``twistd broker`` with ``aclEnable=true``.

Accounts made or removed through mqadmin are in force for the very next request; only admin accounts may
use the ACL admin codes (mq is stricter than RocketMQ 4.9 here); the file is rewritten in place.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.admin.conftest import mqadmin, start_broker, start_namesrv
from tests.support.processes import REPO, child_env, wait_until

ADMIN = ("aclAdmin01", "aclAdminSecret")
USER = ("aclUser001", "aclUserSecret")
PLAIN_ACL = f"""\
accounts:
  - accessKey: {ADMIN[0]}
    secretKey: {ADMIN[1]}
    admin: true
  - accessKey: {USER[0]}
    secretKey: {USER[1]}
    admin: false
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: SUB
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    (home / "conf").mkdir()
    (home / "conf" / "plain_acl.yml").write_text(PLAIN_ACL)
    namesrv = start_namesrv(tmp_path_factory.mktemp("namesrv"))
    broker = start_broker(tmp_path_factory.mktemp("broker"), namesrv.addr, name="acl-broker", cluster="AclCluster",
                          conf_extra=f"aclEnable=true\nrocketmqHome={home}\n")
    broker.namesrv, broker.home = namesrv.addr, home
    wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=namesrv.addr).code == 0, 20,
               what="the broker registered")
    r = mqadmin("updateTopic", "-b", broker.addr, "-t", "AclCmdTopic", "--access-key", ADMIN[0], "--secret-key",
                ADMIN[1], namesrv=namesrv.addr)
    assert r.code == 0, r.err
    yield broker
    broker.stop(timeout=15)
    namesrv.stop(timeout=15)


def adm(broker, *args, account=ADMIN):
    creds = ("--access-key", account[0], "--secret-key", account[1]) if account else ()
    return mqadmin(*args, *creds, namesrv=broker.namesrv)


def accounts_on_disk(broker):
    doc = yaml.safe_load((broker.home / "conf" / "plain_acl.yml").read_text())
    return {a["accessKey"]: a for a in doc["accounts"]}, doc


def test_created_account_works_at_once_and_deleted_one_stops(cluster):
    new = ("newUser001", "newSecret001")
    assert adm(cluster, "sendMessage", "-t", "AclCmdTopic", "-p", "x", account=new).code != 0
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", new[0], "-s", new[1], "-i", "DENY",
            "-t", "AclCmdTopic=PUB", "-u", "SUB")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == f"create or update plain access config to {cluster.addr} success."
    assert new[1] not in r.out
    on_disk, doc = accounts_on_disk(cluster)
    assert on_disk[new[0]]["topicPerms"] == ["AclCmdTopic=PUB"] and doc["dataVersion"][0]["counter"] >= 1
    r = adm(cluster, "sendMessage", "-t", "AclCmdTopic", "-p", "allowed", "--json", account=new)
    assert r.code == 0, r.err
    r = adm(cluster, "deleteAclConfig", "-c", "AclCluster", "-a", new[0])
    assert (r.code, r.out) == (0, f"delete plain access config account from {cluster.addr} success.\n"), r.err
    assert new[0] not in accounts_on_disk(cluster)[0]
    r = adm(cluster, "sendMessage", "-t", "AclCmdTopic", "-p", "refused", account=new)
    assert r.code != 0 and f"No acl config for {new[0]}" in r.err


def test_only_admins_may_change_the_accounts(cluster):
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", "sneaky001", "-s", "sneakySecret", "-m", "true",
            account=USER)
    assert r.code == 1
    assert "Need admin permission for request code=50, but accessKey=aclUser001 is not" in r.err
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", "sneaky001", "-s", "sneakySecret", account=None)
    assert r.code == 1 and "No accessKey is configured" in r.err
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", "sneaky001", "-s", "sneakySecret",
            account=(ADMIN[0], "wrongSecret"))
    assert r.code == 1 and "Check signature failed" in r.err
    assert "sneaky001" not in accounts_on_disk(cluster)[0]
    for cmd in (("clusterAclConfigVersion", "-b", cluster.addr), ("getAclConfig", "-b", cluster.addr),
                ("deleteAclConfig", "-b", cluster.addr, "-a", ADMIN[0]),
                ("updateGlobalWhiteAddr", "-b", cluster.addr, "-g", "0.0.0.0")):
        r = adm(cluster, *cmd, account=USER)
        assert r.code == 1 and "Need admin permission" in r.err, (cmd, r.err)
    assert ADMIN[0] in accounts_on_disk(cluster)[0]


def test_bad_values_are_refused_with_the_reason(cluster):
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", "short", "-s", "longEnoughSecret")
    assert r.code == 1 and "UPDATE_AND_CREATE_ACL_CONFIG_FAILED" in r.err and "accessKey must be longer" in r.err
    r = adm(cluster, "updateAclConfig", "-b", cluster.addr, "-a", "okUser001", "-s", "okSecret01", "-i", "ALL")
    assert r.code == 2 and "invalid permission 'ALL'" in r.err  # mqadmin checks perm words before sending
    r = adm(cluster, "updateGlobalWhiteAddr", "-b", cluster.addr, "-g", "10.0.0.*", "-p", "/etc/plain_acl.yml")
    assert r.code == 1 and "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED" in r.err and "not under rocketmqHome" in r.err


def test_global_white_list_versions_and_listing(cluster):
    r = adm(cluster, "updateGlobalWhiteAddr", "-c", "AclCluster", "-g", "10.10.103.*,192.168.0.*")
    assert (r.code, r.out) == (0, f"update global white remote addresses to {cluster.addr} success.\n"), r.err
    assert accounts_on_disk(cluster)[1]["globalWhiteRemoteAddresses"] == ["10.10.103.*", "192.168.0.*"]
    r = adm(cluster, "clusterAclConfigVersion", "-c", "AclCluster")
    assert r.code == 0, r.err
    head, row = r.out.splitlines()[:2]
    assert head.split("  ")[0] == "#Cluster Name"
    assert row.split()[:4] == ["AclCluster", "acl-broker", cluster.addr, str(cluster.home / "conf" / "plain_acl.yml")]
    versions = adm(cluster, "clusterAclConfigVersion", "-b", cluster.addr, "--json").json()
    assert versions[0]["counter"] >= 1
    listing = adm(cluster, "getAclConfig", "-b", cluster.addr, "--json").json()[cluster.addr]
    assert listing["globalWhiteAddrs"] == ["10.10.103.*", "192.168.0.*"]
    assert {a["secretKey"] for a in listing["plainAccessConfigs"]} == {"******"}
    text = adm(cluster, "getAclConfig", "-b", cluster.addr).out
    assert ADMIN[1] not in text and USER[1] not in text and "aclUser001" in text


def bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mq.bench.cli", *args], capture_output=True, text=True,
                          timeout=120, env=child_env(env or {}), cwd=str(REPO))


def test_mq_bench_signs_with_options_or_environment(cluster):
    base = ("producer", "-n", cluster.namesrv, "-t", "AclCmdTopic", "-c", "50", "-w", "4", "--json")
    r = bench(*base, "--access-key", USER[0], "--secret-key", USER[1])
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["failures"] == 0
    r = bench(*base, env={"MQ_ACCESS_KEY": USER[0], "MQ_SECRET_KEY": USER[1]})
    assert r.returncode == 0 and json.loads(r.stdout)["messages"] >= 50, r.stderr[-2000:]
    r = bench(*base, env={"MQ_ACCESS_KEY": USER[0], "MQ_SECRET_KEY": "wrongSecret1"})
    assert r.returncode != 0 and "Check signature failed" in r.stderr
    r = bench(*base, "--access-key", USER[0])
    assert r.returncode == 2 and "secret key" in r.stderr
