"""Subscription expressions on the broker: which filter a pull uses, and which expressions are refused.

TAG expressions (``a || b``, ``*``) need nothing; SQL92 expressions need ``enablePropertyFilter`` (off by
default, as in RocketMQ) and must parse. The same rule answers PULL_MESSAGE, HEART_BEAT and
CHECK_CLIENT_CONFIG, each with a remark saying which group, topic and expression, and why.
"""

from __future__ import annotations

from typing import Optional, Tuple

from mq.common.filter_sql92 import Sql92Error, Sql92MessageFilter, compile_sql92
from mq.common.heartbeat import EXPRESSION_SQL92, EXPRESSION_TAG, SubscriptionData
from mq.remoting.codes import ResponseCode
from mq.store.filter import TagFilter


def refusal(expression_type: Optional[str], expression: Optional[str], enable_property_filter: bool
            ) -> Optional[Tuple[int, str]]:
    """(response code, remark) when the broker cannot serve this subscription, else None."""
    kind = (expression_type or EXPRESSION_TAG).upper()
    if kind == EXPRESSION_TAG:
        return None
    if kind != EXPRESSION_SQL92:
        return ResponseCode.SYSTEM_ERROR, f"unknown expression type {kind}: the broker filters by TAG or SQL92"
    if not enable_property_filter:
        return (ResponseCode.SYSTEM_ERROR,
                "The broker does not support consumer to filter message by SQL92 (enablePropertyFilter=false)")
    try:
        compile_sql92(expression)
    except Sql92Error as e:
        return ResponseCode.SUBSCRIPTION_PARSE_FAILED, str(e)
    return None


def message_filter(sub: SubscriptionData):
    """The store filter of a subscription the broker accepted; None matches everything."""
    if sub.expression_type == EXPRESSION_SQL92:
        return Sql92MessageFilter(compile_sql92(sub.sub_string))
    if not sub.tags_set:
        return None
    return TagFilter(sub.tags_set)
