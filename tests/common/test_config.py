"""The one settings mechanism behind NamesrvConfig, BrokerConfig and MessageStoreConfig."""

from __future__ import annotations

import pytest

from mq.broker.config import BrokerConfig
from mq.common.config import camel, format_value
from mq.namesrv.config import NamesrvConfig
from mq.store.config import BrokerRole, FlushDiskType, MessageStoreConfig


def test_keys_are_rocketmq_names():
    assert camel("broker_cluster_name") == "brokerClusterName"
    assert camel("broker_ip1", {"broker_ip1": "brokerIP1"}) == "brokerIP1"
    props = BrokerConfig().to_properties()
    assert "brokerIP1" in props and "brokerClusterName" in props and "brokerIp1" not in props


def test_broker_config_converts_each_kind_and_reports_changes():
    config = BrokerConfig.from_properties({
        "listenPort": "10921", "brokerRole": "sync_master", "autoCreateTopicEnable": "false",
        "brokerIP1": "10.0.0.9", "mappedFileSizeCommitLog": "65536",
    })
    assert config.listen_port == 10921 and config.broker_role is BrokerRole.SYNC_MASTER
    assert config.auto_create_topic_enable is False and config.broker_ip1 == "10.0.0.9"
    assert config.store_config().mapped_file_size_commit_log == 65536  # a store key passed through
    assert config.update({"flushDiskType": "SYNC_FLUSH", "listenPort": "10921"}) == {"flushDiskType": "SYNC_FLUSH"}


@pytest.mark.parametrize("key, raw, message", [
    ("listenPort", "ten", "listenPort: 'ten' is not an integer"),
    ("brokerRole", "LEADER", "brokerRole: 'LEADER' is not one of ASYNC_MASTER, SYNC_MASTER, SLAVE"),
    ("autoCreateTopicEnable", "yes", "autoCreateTopicEnable: 'yes' is not true or false"),
])
def test_bad_broker_values_name_their_key_and_change_nothing(key, raw, message):
    config = BrokerConfig()
    before = config.to_properties()
    with pytest.raises(ValueError, match=message):
        config.update({key: raw, "brokerName": "changed"})
    assert config.to_properties() == before


def test_store_config_reads_broker_conf_keys_and_refuses_bad_values():
    config = MessageStoreConfig.from_properties({
        "flushDiskType": "sync_flush", "checkCRCOnRecover": "false", "maxHashSlotNum": "64", "brokerName": "ignored",
    })
    assert config.flush_disk_type is FlushDiskType.SYNC_FLUSH
    assert config.check_crc_on_recover is False and config.max_hash_slot_num == 64
    with pytest.raises(ValueError, match="syncFlushTimeout: 'soon' is not an integer"):
        MessageStoreConfig.from_properties({"syncFlushTimeout": "soon"})
    with pytest.raises(ValueError, match="messageIndexEnable: 'maybe' is not true or false"):
        BrokerConfig.from_properties({"messageIndexEnable": "maybe"}).store_config()


def test_namesrv_config_uses_the_same_conversion():
    config = NamesrvConfig()
    assert config.update_from_properties({"orderMessageEnable": "1", "brokerChannelExpiredTime": "30"}) == {
        "brokerChannelExpiredTime": 30.0, "orderMessageEnable": True,
    }
    with pytest.raises(ValueError, match="listenPort: '-' is not an integer"):
        config.update_from_properties({"listenPort": "-"})


def test_format_value_writes_java_spellings():
    assert [format_value(v) for v in (True, False, FlushDiskType.ASYNC_FLUSH, 7, "x")] == [
        "true", "false", "ASYNC_FLUSH", "7", "x"]
