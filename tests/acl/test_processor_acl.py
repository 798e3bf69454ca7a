"""The ACL admin codes 50-54 on an ``AclStore`` over real files: answers, validation, confinement, atomic saves."""

from __future__ import annotations

import json
import os
import re

import attr
import pytest
import yaml

from mq.acl import store as acl_store
from mq.acl.store import AclStore, acl_paths
from mq.broker.processor.acl import MASK, MAX_LIST_ITEMS, AclAdminProcessor
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from tests.acl.test_store import SAMPLE

RC = ResponseCode
MAIN = SAMPLE  # RocketMQ's distribution plain_acl.yml


@attr.s
class Config:
    broker_name: str = attr.ib(default="broker-a")
    broker_addr: str = attr.ib(default="127.0.0.1:10911")
    broker_cluster_name: str = attr.ib(default="DefaultCluster")


@pytest.fixture
def home(tmp_path):
    (tmp_path / "conf" / "acl").mkdir(parents=True)
    (tmp_path / "conf" / "plain_acl.yml").write_text(MAIN)
    (tmp_path / "conf" / "acl" / "extra.yml").write_text("accounts:\n  - accessKey: extraKey1\n    secretKey: extraSecret\n")
    return tmp_path


@pytest.fixture
def store(home):
    s = AclStore(*acl_paths(str(home)))
    s.load()
    return s


@pytest.fixture
def processor(store, home):
    return AclAdminProcessor(lambda: store, Config(), str(home))


def call(processor, code, ext=None):
    request = RemotingCommand.request(code, ext)
    fn = {RequestCode.UPDATE_AND_CREATE_ACL_CONFIG: processor.update_and_create,
          RequestCode.DELETE_ACL_CONFIG: processor.delete,
          RequestCode.GET_BROKER_CLUSTER_ACL_INFO: processor.get_versions,
          RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG: processor.update_global_white,
          RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG: processor.get_config}[code]
    return fn(request, None)


def on_disk(home, name="plain_acl.yml"):
    return yaml.safe_load((home / "conf" / name).read_text())


def test_create_account_is_saved_and_in_force_at_once(processor, store, home):
    r = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {
        "accessKey": "newUser01", "secretKey": "newSecret01", "whiteRemoteAddress": "192.168.1.*",
        "admin": "false", "defaultTopicPerm": "pub", "defaultGroupPerm": "SUB",
        "topicPerms": "topicX=PUB,topicY=SUB|PUB", "groupPerms": "g1=SUB"})
    assert (r.code, r.remark) == (RC.SUCCESS, None)
    assert "newUser01" in store.table.accounts
    doc = on_disk(home)
    account = next(a for a in doc["accounts"] if a["accessKey"] == "newUser01")
    assert account["topicPerms"] == ["topicX=PUB", "topicY=SUB|PUB"] and account["defaultTopicPerm"] == "PUB"
    assert doc["dataVersion"][0]["counter"] == 1
    # Replaced atomically: no temporary file is left (write_atomically keeps the previous file as .bak).
    assert sorted(os.listdir(home / "conf")) == ["acl", "plain_acl.yml", "plain_acl.yml.bak"]


def test_update_keeps_fields_left_out_but_sets_admin(processor, store, home):
    r = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {"accessKey": "RocketMQ", "admin": "true",
                                                                   "defaultTopicPerm": "PUB"})
    assert r.code == RC.SUCCESS, r.remark
    account = store.account("RocketMQ")
    assert account.secret_key == "12345678" and account.admin is True and account.default_topic_perm == "PUB"
    assert account.topic_perms == ("topicA=DENY", "topicB=PUB|SUB", "topicC=SUB")


def test_account_of_an_extra_file_is_updated_in_that_file(processor, home):
    r = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {"accessKey": "extraKey1", "defaultTopicPerm": "SUB"})
    assert r.code == RC.SUCCESS, r.remark
    assert on_disk(home, "acl/extra.yml")["accounts"][0]["defaultTopicPerm"] == "SUB"
    assert len(on_disk(home)["accounts"]) == 2


@pytest.mark.parametrize("ext, remark", [
    ({"accessKey": "short", "secretKey": "12345678"}, "accessKey must be longer than 6 characters"),
    ({"accessKey": "longEnough", "secretKey": "123456"}, "secretKey must be longer than 6 characters"),
    ({"accessKey": "longEnough"}, "secretKey is needed for a new account"),
    ({"accessKey": "longEnough", "secretKey": "12345678", "defaultTopicPerm": "ALL"}, "defaultTopicPerm"),
    ({"accessKey": "longEnough", "secretKey": "12345678", "topicPerms": "t1=PUB,t2"}, "'t2' is not resource=PERM"),
    ({"accessKey": "longEnough", "secretKey": "12345678", "groupPerms": "g=WRITE"}, "'WRITE' is not a permission"),
    ({"accessKey": "longEnough", "secretKey": "12345678", "whiteRemoteAddress": "300.1.1.1"}, "whiteRemoteAddress"),
    ({"accessKey": "long\nEnough", "secretKey": "12345678"}, "accessKey contains whitespace"),
    ({"accessKey": "k" * 300, "secretKey": "12345678"}, "accessKey is longer than 256 characters"),
    ({"accessKey": "longEnough", "secretKey": "12345678", "topicPerms": ",".join(["t=PUB"] * (MAX_LIST_ITEMS + 1))},
     f"more than {MAX_LIST_ITEMS}"),
    ({"secretKey": "12345678"}, "accessKey"),
])
def test_bad_fields_are_refused_with_209_and_nothing_is_written(processor, home, ext, remark):
    before = (home / "conf" / "plain_acl.yml").read_bytes()
    r = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, ext)
    assert r.code == RC.UPDATE_AND_CREATE_ACL_CONFIG_FAILED
    assert remark in r.remark
    assert (home / "conf" / "plain_acl.yml").read_bytes() == before


def test_an_update_that_would_make_the_file_too_large_to_load_is_refused(processor, store, home, monkeypatch):
    """The save checks the bound the load reads with (``MAX_FILE_SIZE``, 8 MiB, lowered here: PyYAML without
    libyaml takes about 1.5 s a MiB); files grown a request at a time once stopped the broker's restart."""
    monkeypatch.setattr(acl_store, "MAX_FILE_SIZE", 16 * 1024)
    perms = ",".join(f"{'t' * 240}{i:03d}=PUB" for i in range(40))  # about 10 KiB in the file
    first = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
                 {"accessKey": "bigUser01", "secretKey": "12345678", "topicPerms": perms})
    assert first.code == RC.SUCCESS, first.remark
    before = (home / "conf" / "plain_acl.yml").read_bytes()
    versions = store.versions()
    second = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
                  {"accessKey": "bigUser02", "secretKey": "12345678", "topicPerms": perms})
    assert second.code == RC.UPDATE_AND_CREATE_ACL_CONFIG_FAILED
    assert re.fullmatch(r"UPDATE_AND_CREATE_ACL_CONFIG refused: \S+plain_acl\.yml would be 2\d{4} bytes, larger than "
                        r"the 16384 a load reads", second.remark), second.remark
    assert (home / "conf" / "plain_acl.yml").read_bytes() == before
    assert store.account("bigUser02") is None and "bigUser02" not in store.table.accounts
    assert store.versions() == versions
    reloaded = AclStore(*acl_paths(str(home)))
    reloaded.load()  # under the same bound
    assert "bigUser01" in reloaded.table.accounts and "bigUser02" not in reloaded.table.accounts


def test_delete(processor, store, home):
    r = call(processor, RequestCode.DELETE_ACL_CONFIG, {"accessKey": "RocketMQ"})
    assert r.code == RC.SUCCESS, r.remark
    assert store.account("RocketMQ") is None and "RocketMQ" not in store.table.accounts
    assert [a["accessKey"] for a in on_disk(home)["accounts"]] == ["rocketmq2"]
    r = call(processor, RequestCode.DELETE_ACL_CONFIG, {"accessKey": "RocketMQ"})
    assert r.code == RC.DELETE_ACL_CONFIG_FAILED and "RocketMQ" in r.remark
    assert call(processor, RequestCode.DELETE_ACL_CONFIG, {}).code == RC.DELETE_ACL_CONFIG_FAILED


def test_global_white_list_of_the_main_and_of_an_extra_file(processor, home):
    r = call(processor, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, {"globalWhiteAddrs": "10.1.1.*, 192.168.0.7"})
    assert r.code == RC.SUCCESS, r.remark
    assert on_disk(home)["globalWhiteRemoteAddresses"] == ["10.1.1.*", "192.168.0.7"]
    extra = str(home / "conf" / "acl" / "extra.yml")
    r = call(processor, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
             {"globalWhiteAddrs": "172.16.*", "aclFileFullPath": extra})
    assert r.code == RC.SUCCESS, r.remark
    assert on_disk(home, "acl/extra.yml")["globalWhiteRemoteAddresses"] == ["172.16.*"]


@pytest.mark.parametrize("path, remark", [
    ("/etc/passwd.yml", "is not under rocketmqHome"),
    ("{home}/../outside.yml", "is not under rocketmqHome"),
    ("{home}/conf/new.yml", "is not one of the broker's ACL files"),
    ("{home}/conf/acl/../../store/x.yml", "is not one of the broker's ACL files"),
    ("{home}/conf/broker.conf", "is not a .yml or .yaml file"),
])
def test_acl_file_path_is_confined(processor, home, path, remark):
    path = path.format(home=home)
    r = call(processor, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
             {"globalWhiteAddrs": "10.1.1.*", "aclFileFullPath": path})
    assert r.code == RC.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED
    assert remark in r.remark
    assert not os.path.exists(path) or path.endswith("broker.conf")
    assert not (home.parent / "outside.yml").exists()


def test_symlink_out_of_home_is_refused(processor, home, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "evil.yml"
    outside.write_text("")
    (home / "conf" / "acl" / "link.yml").symlink_to(outside)
    r = call(processor, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
             {"globalWhiteAddrs": "10.1.1.*", "aclFileFullPath": str(home / "conf" / "acl" / "link.yml")})
    assert r.code == RC.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED and "not under rocketmqHome" in r.remark
    assert outside.read_text() == ""


def test_bad_white_pattern_is_refused(processor, home):
    r = call(processor, RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, {"globalWhiteAddrs": "10.1.1.*,not-an-ip"})
    assert r.code == RC.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED and "globalWhiteAddrs" in r.remark
    assert on_disk(home)["globalWhiteRemoteAddresses"] == ["10.10.103.*", "192.168.0.*"]


def test_versions_answer(processor, home):
    call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {"accessKey": "RocketMQ", "defaultTopicPerm": "PUB"})
    r = call(processor, RequestCode.GET_BROKER_CLUSTER_ACL_INFO)
    assert r.code == RC.SUCCESS
    ext = r.ext_fields
    assert (ext["brokerName"], ext["brokerAddr"], ext["clusterName"]) == ("broker-a", "127.0.0.1:10911",
                                                                          "DefaultCluster")
    assert json.loads(ext["version"])["counter"] == 1
    files = json.loads(ext["allAclFileVersion"])
    assert set(files) == {str(home / "conf" / "plain_acl.yml"), str(home / "conf" / "acl" / "extra.yml")}


def test_config_answer_masks_every_secret(processor):
    r = call(processor, RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG)
    body = json.loads(r.body)
    assert body["globalWhiteAddrs"] == ["10.10.103.*", "192.168.0.*"]
    assert {a["accessKey"] for a in body["plainAccessConfigs"]} == {"RocketMQ", "rocketmq2", "extraKey1"}
    assert {a["secretKey"] for a in body["plainAccessConfigs"]} == {MASK}


def test_acl_off_refuses_every_code(home):
    processor = AclAdminProcessor(lambda: None, Config(), str(home))
    r = call(processor, RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {"accessKey": "newUser01", "secretKey": "12345678"})
    assert r.code == RC.UPDATE_AND_CREATE_ACL_CONFIG_FAILED and "aclEnable=false" in r.remark
    assert call(processor, RequestCode.GET_BROKER_CLUSTER_ACL_INFO).code == RC.SYSTEM_ERROR


def test_random_fields_never_break_the_processor_or_the_files(processor, home):
    import random

    rng = random.Random(10)
    pieces = ["", " ", "x", "longEnough1", "PUB", "sub|pub", "DENY", "=", ",", "t=PUB", "a=b=c", "*", "10.0.0.1",
              "1.2.3.{1,2}", "::1", "300.1.1.1", "\n", "\x00", "../", "/etc/x.yml", "é", "k" * 300, "true", "1"]
    keys = ["accessKey", "secretKey", "whiteRemoteAddress", "admin", "defaultTopicPerm", "defaultGroupPerm",
            "topicPerms", "groupPerms", "globalWhiteAddrs", "aclFileFullPath"]
    codes = [RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, RequestCode.DELETE_ACL_CONFIG,
             RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, RequestCode.GET_BROKER_CLUSTER_ACL_INFO,
             RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG]
    allowed = {RC.SUCCESS, RC.UPDATE_AND_CREATE_ACL_CONFIG_FAILED, RC.DELETE_ACL_CONFIG_FAILED,
               RC.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED}
    for _ in range(400):
        ext = {k: "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))
               for k in rng.sample(keys, rng.randint(0, len(keys)))}
        r = call(processor, rng.choice(codes), ext)
        assert r.code in allowed, (ext, r.remark)
        assert r.code == RC.SUCCESS or r.remark
    reloaded = AclStore(*acl_paths(str(home)))
    reloaded.load()  # whatever was accepted still loads
    assert sorted(p.name for p in (home / "conf").iterdir()) in (["acl", "plain_acl.yml"],
                                                                 ["acl", "plain_acl.yml", "plain_acl.yml.bak"])
