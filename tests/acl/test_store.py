"""plain_acl.yml: where it is, what it may hold, loading several files, saving changes back."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from mq.acl.accounts import Account, AclConfigError, AclFile
from mq.acl.permission import DENY, PUB, SUB
from mq.acl.store import AclStore, acl_paths
from tests.support.processes import REPO

SAMPLE = """\
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def home(tmp_path):
    write(str(tmp_path / "conf" / "plain_acl.yml"), SAMPLE)
    return str(tmp_path)


def store_for(home: str) -> AclStore:
    return AclStore(*acl_paths(home), now_ms=lambda: 1234)


def test_rocketmq_sample_file_loads(home):
    table = store_for(home).load()
    assert len(table.global_white) == 2 and table.global_white[0].matches("10.10.103.9")
    rmq = table.accounts["RocketMQ"]
    assert rmq.secret_key == "12345678"  # YAML read it as a number
    assert not rmq.admin and rmq.default_topic_perm == DENY and rmq.default_group_perm == SUB
    assert rmq.perms == {"topicA": DENY, "topicB": PUB | SUB, "topicC": SUB,
                         "%RETRY%groupA": DENY, "%RETRY%groupB": PUB | SUB, "%RETRY%groupC": SUB}
    assert not rmq.white.matches("10.0.0.1")
    admin = table.accounts["rocketmq2"]
    assert admin.admin and admin.perms is None and admin.white.matches("192.168.1.20")


def test_paths_from_home_and_from_a_named_file(tmp_path):
    assert acl_paths("/opt/rmq") == ("/opt/rmq/conf/plain_acl.yml", "/opt/rmq/conf/acl")
    assert acl_paths("/opt/rmq", "conf/other.yml") == ("/opt/rmq/conf/other.yml", "/opt/rmq/conf/acl")
    assert acl_paths("", str(tmp_path / "a.yml")) == (str(tmp_path / "a.yml"), None)
    with pytest.raises(AclConfigError, match="rocketmqHome"):
        acl_paths("", "")


def test_extra_files_recursive_first_key_wins_tools_yml_left_out(home):
    account = "accounts:\n  - accessKey: {ak}\n    secretKey: {sk}\n"
    write(os.path.join(home, "conf", "acl", "b", "two.yaml"), account.format(ak="RocketMQ", sk="otherSecret"))
    write(os.path.join(home, "conf", "acl", "a.yml"), account.format(ak="extraKey1", sk="extraSecret"))
    write(os.path.join(home, "conf", "acl", "ignored.txt"), "not: [yaml")
    write(os.path.join(home, "conf", "tools.yml"), "accessKey: x\n")
    store = store_for(home)
    table = store.load()
    assert table.accounts["RocketMQ"].secret_key == "12345678"  # the main file came first
    assert table.accounts["extraKey1"].secret_key == "extraSecret"
    assert list(store.files) == [os.path.join(home, "conf", "plain_acl.yml"),
                                 os.path.join(home, "conf", "acl", "a.yml"),
                                 os.path.join(home, "conf", "acl", "b", "two.yaml")]


def test_missing_main_file_is_empty(tmp_path):
    store = store_for(str(tmp_path))
    table = store.load()
    assert table.accounts == {} and table.global_white == ()
    assert store.default_file.accounts == []


@pytest.mark.parametrize("text, words", [
    ("accounts:\n  - accessKey: short\n    secretKey: 12345678\n", "accessKey must be longer than 6"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 123456\n", "secretKey must be longer than 6"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 1234567\n    defaultTopicPerm: ALL\n", "'ALL' is not a"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 1234567\n    topicPerms: [t=PUBX]\n", "PUBX"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 1234567\n    topicPerms: [justatopic]\n",
     "not resource=PERM"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 1234567\n    whiteRemoteAddress: 10.1\n", "10.1"),
    ("accounts:\n  - accessKey: longenough\n    secretKey: 1234567\n    admin: maybe\n", "not true or false"),
    ("globalWhiteRemoteAddresses: [300.1.1.1]\n", "globalWhiteRemoteAddresses"),
    ("accounts: {a: 1}\n", "accounts is not a list"),
    ("- just\n- a list\n", "not a map"),
    ("accounts: [\n", "not YAML"),
    ("accounts:\n  - !!python/object:os.system {}\n", "not YAML"),
])
def test_bad_files_are_refused_naming_the_file_and_the_fault(tmp_path, text, words):
    write(str(tmp_path / "conf" / "plain_acl.yml"), text)
    with pytest.raises(AclConfigError, match="plain_acl.yml") as e:
        store_for(str(tmp_path)).load()
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_reload_keeps_previous_accounts_when_the_file_turns_bad(home):
    store = store_for(home)
    store.load()
    write(os.path.join(home, "conf", "plain_acl.yml"), "accounts: [\n")
    assert store.reload() is False
    assert "RocketMQ" in store.table.accounts
    write(os.path.join(home, "conf", "plain_acl.yml"), "accounts:\n  - {accessKey: newKey12, secretKey: newSecret}\n")
    assert store.reload() is True
    assert list(store.table.accounts) == ["newKey12"]


def test_update_delete_and_white_list_save_atomically_with_a_new_version(home):
    store = store_for(home)
    store.load()
    main = os.path.join(home, "conf", "plain_acl.yml")
    acl = store.update_account(Account("newAccount1", "newSecret1", default_topic_perm="PUB", topic_perms=["t=SUB"]))
    assert acl.path == main and acl.data_version.counter == 1 and acl.data_version.timestamp == 1234
    assert store.table.accounts["newAccount1"].default_topic_perm == PUB
    assert not os.path.exists(main + ".tmp")
    saved = yaml.safe_load(open(main).read())
    assert saved["dataVersion"] == [{"counter": 1, "timestamp": 1234}]
    assert saved["accounts"][-1] == {"accessKey": "newAccount1", "secretKey": "newSecret1", "whiteRemoteAddress": "",
                                     "admin": False, "defaultTopicPerm": "PUB", "topicPerms": ["t=SUB"]}
    # Replacing keeps the place, and a fresh load reads what was saved.
    store.update_account(Account("RocketMQ", "changedSecret", admin=True))
    again = store_for(home)
    again.load()
    assert again.table.accounts["RocketMQ"].secret_key == "changedSecret"
    assert [a.access_key for a in again.default_file.accounts] == ["RocketMQ", "rocketmq2", "newAccount1"]
    assert again.versions() == {main: {"counter": 2, "timestamp": 1234}}

    store.delete_account("rocketmq2")
    assert "rocketmq2" not in store.table.accounts
    with pytest.raises(AclConfigError, match="no account"):
        store.delete_account("rocketmq2")
    store.update_global_white(["10.0.0.*", " "])
    assert store.table.global_white[0].matches("10.0.0.8") and len(store.table.global_white) == 1
    with pytest.raises(AclConfigError):
        store.update_global_white(["10.0"])
    with pytest.raises(AclConfigError, match="not one of the ACL files"):
        store.update_global_white(["10.0.0.1"], path="/etc/passwd")
    assert store.default_file.data_version.counter == 4


def test_an_invalid_update_changes_nothing(home):
    store = store_for(home)
    store.load()
    before = open(os.path.join(home, "conf", "plain_acl.yml")).read()
    with pytest.raises(AclConfigError, match="longer than 6"):
        store.update_account(Account("tiny", "newSecret1"))
    assert open(os.path.join(home, "conf", "plain_acl.yml")).read() == before
    assert "tiny" not in store.table.accounts


def test_account_document_round_trip():
    account = Account("accessKey1", "secretKey1", "10.*.*.*", True, "SUB", "PUB", ["a=PUB"], ["g=SUB"])
    assert Account.from_document(account.to_document()) == account
    acl = AclFile("/x.yml", ["1.2.3.4"], [account])
    assert AclFile.from_document("/x.yml", acl.to_document()).accounts == [account]


def test_the_sample_in_docs_acl_md_loads(tmp_path):
    doc = (REPO / "docs" / "acl.md").read_text()
    (sample,) = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    write(str(tmp_path / "conf" / "plain_acl.yml"), sample)
    store = store_for(str(tmp_path))
    table = store.load()
    assert table.global_white[0].matches("10.10.103.1")
    assert table.accounts["RocketMQ"].perms["%RETRY%groupB"] == PUB | SUB
    assert store.default_file.data_version.counter == 1
