"""The one settings mechanism behind NamesrvConfig, BrokerConfig and MessageStoreConfig."""

from __future__ import annotations

import re

import attr
import pytest

from mq.broker.config import BrokerConfig
from mq.common.config import Range, camel, convert_value, default_of, format_value, tunable, within
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
    assert config.update_from_properties({"orderMessageEnable": "1", "brokerChannelExpiredTime": "300"}) == {
        "brokerChannelExpiredTime": 300.0, "orderMessageEnable": True,
    }
    with pytest.raises(ValueError, match="listenPort: '-' is not an integer"):
        config.update_from_properties({"listenPort": "-"})


def test_format_value_writes_java_spellings():
    assert [format_value(v) for v in (True, False, FlushDiskType.ASYNC_FLUSH, 7, "x")] == [
        "true", "false", "ASYNC_FLUSH", "7", "x"]


# -- ranges: every number setting declares one, next to its field ---------------------------------------------

def _number_fields():
    from mq.broker.ha.master import HAConfig
    from mq.console.config import ConsoleConfig

    for cls in (BrokerConfig, MessageStoreConfig, NamesrvConfig, HAConfig, ConsoleConfig):
        for field in attr.fields(cls):
            default = default_of(field)
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                yield cls, field, default


@pytest.mark.parametrize("cls, field, default", list(_number_fields()),
                         ids=lambda v: getattr(v, "name", getattr(v, "__name__", None)))
def test_every_number_setting_has_a_range_holding_its_default(cls, field, default):
    bounds = field.metadata.get("range")
    assert isinstance(bounds, Range), f"{cls.__name__}.{field.name} declares no range"
    bounds.check(field.name, default)
    for value in (-1, 0):  # 0 and below make sense only where the range says so (ports and switches "0 = off")
        if bounds.low is not None and value < bounds.low:
            with pytest.raises(ValueError, match=f"is outside {re.escape(str(bounds))}"):
                convert_value(field, str(value), field.name)


@pytest.mark.parametrize("key, raw, message", [
    ("flushConsumerOffsetInterval", "0", "flushConsumerOffsetInterval: 0 is outside 100..3600000 (ms)"),
    ("maxMessageSize", "-5", "maxMessageSize: -5 is outside 1024..67108864 (bytes)"),
    ("channelExpiredTimeout", "-1", "channelExpiredTimeout: -1 is outside 60000.. (ms)"),
    ("registerNameServerPeriod", "-1", "registerNameServerPeriod: -1 is outside 10000..60000 (ms)"),
    ("shortPollingTimeMills", "-1", "shortPollingTimeMills: -1 is outside 10..30000 (ms)"),
    ("defaultTopicQueueNums", "100000", "defaultTopicQueueNums: 100000 is outside 1..1024"),
    ("brokerPermission", "8", "brokerPermission: 8 is outside 0..7"),
    ("listenPort", "65535", "listenPort: 65535 is outside 1..65534"),
    ("metricsPort", "70000", r"metricsPort: 70000 is outside 0..65535 (0 = off)"),
])
def test_broker_values_out_of_range_are_refused_by_name_and_change_nothing(key, raw, message):
    config = BrokerConfig()
    before = config.to_properties()
    for live in (False, True):
        with pytest.raises(ValueError, match=re.escape(message)):
            config.update({"traceOn": "false", key: raw}, live=live)
        assert config.to_properties() == before


def test_range_ends_are_allowed():
    config = BrokerConfig()
    config.update({"flushConsumerOffsetInterval": "100", "defaultTopicQueueNums": "1024", "listenPort": "1"}, live=True)
    assert (config.flush_consumer_offset_interval, config.default_topic_queue_nums) == (100, 1024)


@pytest.mark.parametrize("props, message", [
    ({"mappedFileSizeCommitLog": "0"}, "mappedFileSizeCommitLog: 0 is outside 4096..2147483647 (bytes)"),
    ({"flushIntervalCommitLog": "0"}, r"flushIntervalCommitLog: 0 is outside 10..60000 (ms)"),
    ({"diskMaxUsedSpaceRatio": "100"}, "diskMaxUsedSpaceRatio: 100 is outside 10..95"),
    ({"cleanResourceInterval": "-1"}, "cleanResourceInterval: -1 is outside 100..3600000"),
    ({"maxTransferCountOnMessageInMemory": "0"}, "maxTransferCountOnMessageInMemory: 0 is outside 1..10000"),
    ({"messageDelayLevel": "1s 5x"}, "messageDelayLevel: '5x' is not a delay such as 5s"),
    ({"messageDelayLevel": "1s 0s"}, r"messageDelayLevel: '0s' is outside 1s..7d"),
    ({"messageDelayLevel": "  "}, "messageDelayLevel: 0 levels is outside 1..64"),
    ({"deleteWhen": "04;25"}, "deleteWhen: '25' is not an hour 0..23"),
    ({"haSendHeartbeatInterval": "0"}, "haSendHeartbeatInterval: 0 is outside 100..600000 (ms)"),
    ({"haListenPort": "-1"}, "haListenPort: -1 is outside 0..65535"),
    ({"syncFlushTimeout": "0"}, r"syncFlushTimeout: 0 is outside 100..600000 (ms)"),
])
def test_store_and_replication_values_are_checked_before_a_start(props, message):
    config = BrokerConfig.from_properties(props)  # kept as given: they are the store's and replication's keys
    with pytest.raises(ValueError, match=re.escape(message)):
        config.check()


def test_namesrv_live_changes_have_a_floor_the_file_does_not():
    # a test cluster may start with a 3 s expiry; a remote peer may not bring it under 90 s
    config = NamesrvConfig()
    config.update_from_properties({"brokerChannelExpiredTime": "3"})
    assert config.broker_expiry == 3.0
    with pytest.raises(ValueError, match=re.escape("brokerChannelExpiredTime: 3 is outside 90..86400 (s) when changed while")):
        config.update_from_properties({"brokerChannelExpiredTime": "3"}, runtime=True)
    with pytest.raises(ValueError, match=re.escape("brokerChannelExpiredTime: -1 is outside 1..86400 (s)")):
        config.set_option("broker_expiry", "-1")
    for raw in ("nan", "inf", "-inf"):
        with pytest.raises(ValueError, match="is not a finite number"):
            config.update_from_properties({"scanNotActiveBrokerInterval": raw})
    assert (config.broker_expiry, config.scan_interval) == (3.0, 10.0)


def test_a_new_setting_gets_its_range_from_one_declaration():
    """What another module does to add a limit: one ``tunable`` (or ``setting``) with ``within``."""

    @attr.s
    class Limits:
        max_connections: int = tunable(1000, within(1, 100_000), runtime=True)

    field = attr.fields(Limits).max_connections
    assert convert_value(field, "5", "maxConnections", live=True) == 5
    with pytest.raises(ValueError, match="maxConnections: 0 is outside 1..100000"):
        convert_value(field, "0", "maxConnections")


@pytest.mark.parametrize("raw, message", [
    ("x", "namesrvAddr: 'x' is not host:port with a port in 1..65535"),
    ("a:1;b:0", "namesrvAddr: 'b:0' is not host:port with a port in 1..65535"),
    (";".join(f"h{i}:9876" for i in range(33)), "namesrvAddr: 33 addresses is more than 32"),
])
def test_namesrv_addresses_are_checked(raw, message):
    config = BrokerConfig(namesrv_addr="a:1")
    with pytest.raises(ValueError, match=re.escape(message)):
        config.update({"namesrvAddr": raw}, live=True)
    assert config.update({"namesrvAddr": "10.0.0.1:9876, [::1]:9876"}, live=True) and config.namesrv_list == [
        "10.0.0.1:9876", "[::1]:9876"]


def test_a_long_value_is_neither_parsed_nor_quoted_whole():
    """A peer chooses a value's length: int() of 10**6 digits takes seconds before Python 3.11, and the remark
    and the log line would carry all of it."""
    config = BrokerConfig()
    for raw in ("9" * 1_000_000, "x" * 1_000_000):
        with pytest.raises(ValueError) as refused:
            config.update({"maxMessageSize": raw}, live=True)
        assert "is not an integer" in str(refused.value) and len(str(refused.value)) < 200
    with pytest.raises(ValueError) as refused:
        NamesrvConfig().update_from_properties({"k" * 100_000: "1"})
    assert "unknown setting" in str(refused.value) and len(str(refused.value)) < 200
    with pytest.raises(ValueError) as refused:
        config.update({"messageDelayLevel": "1" * 100_000 + "q"})
        config.check()
    assert "messageDelayLevel" in str(refused.value) and len(str(refused.value)) < 250
