"""``BrokerService.prepare_inner``'s shortcut returns exactly what its hooks would (retry → DLQ, delay levels,
timers, transaction halves): the same message, field for field, or the same refusal."""

from __future__ import annotations

import random

import attrs

from mq.broker.service import PREPARED_KEYS
from mq.broker.subscription.group import SubscriptionGroupConfig
from mq.common.broker_headers import SendMessageRequestHeader
from mq.common.message import MessageConst, MessageExtBrokerInner, MessageSysFlag, properties_to_string

NOW = 1_800_000_000_000
VALUES = ("", "0", "2", "3", "true", "True", "false", "x", "-5", str(NOW + 5_000), str(NOW - 5_000), "10")
#: Named here, not taken from PREPARED_KEYS, so a key missing there is caught.
KEYS = ("DELAY", "TRAN_MSG", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "TIMER_ORIGIN_PHY", "UNIQ_KEY",
        "TAGS", "KEYS", "DELAYX", "REAL_TOPIC", "a")
TOPICS = ("T", "%RETRY%g", "%RETRY%nobody", "%DLQ%g", "SCHEDULE_TOPIC_XXXX", "TRAN", "%RETRY")
SYS_FLAGS = (0, MessageSysFlag.TRANSACTION_PREPARED_TYPE, MessageSysFlag.TRANSACTION_COMMIT_TYPE,
             MessageSysFlag.TRANSACTION_ROLLBACK_TYPE)


def _message(rng: random.Random):
    props = {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randrange(4))}
    props[MessageConst.PROPERTY_CLUSTER] = "DefaultCluster"
    topic = rng.choice(TOPICS)
    reconsume = rng.choice((0, 3, 16, 30))
    header = SendMessageRequestHeader(producer_group="pg", topic=topic, default_topic="TBW102",
                                      default_topic_queue_nums=4, queue_id=1, sys_flag=0, born_timestamp=NOW,
                                      flag=0, properties=properties_to_string(props), reconsume_times=reconsume,
                                      max_reconsume_times=rng.choice((None, -1, 2, 20)))

    def make():
        return MessageExtBrokerInner(topic=topic, body=b"body", flag=0, properties=dict(props), queue_id=1,
                                     sys_flag=rng_flag, born_timestamp=NOW, born_host=("127.0.0.1", 5),
                                     store_host=("127.0.0.1", 10911), reconsume_times=reconsume,
                                     properties_string=properties_to_string(props))

    rng_flag = rng.choice(SYS_FLAGS)
    return make, header


def _outcome(result):
    if isinstance(result, MessageExtBrokerInner):
        return attrs.asdict(result)
    return (type(result).__name__, result.code, result.remark)


def test_the_shortcut_is_the_general_path(make_broker):
    b = make_broker()
    b.now_ms = lambda: NOW  # timer due times computed twice must agree
    b.subscription_group_manager.update(SubscriptionGroupConfig("g"))
    rng = random.Random(11)
    taken = 0
    for _ in range(3000):
        make, header = _message(rng)
        shortcut = b.prepare_inner(make(), header)
        general = b.prepare_hooks(make(), header)
        assert _outcome(shortcut) == _outcome(general)
        plain = make()
        if PREPARED_KEYS.isdisjoint(plain.properties) and not plain.topic.startswith("%RETRY%"):
            taken += 1
            assert shortcut.topic == plain.topic and shortcut.properties_string == plain.properties_string
    assert 300 < taken < 2700  # both paths were exercised
