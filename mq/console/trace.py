"""One message's trace page: the records clients with tracing on wrote to the trace topic, read by
mq.common.trace_data (the decoder mqadmin and the client share), grouped as the page shows them.

A trace message's keys are the traced messages' ids, so the broker's key index finds every trace message of
one id; here its sends and its consumption attempts are put together.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from mq.common.trace_data import TraceView

UNKNOWN_GROUP = "%UNKNOWN_GROUP%"


def _attempt(request_id: Optional[str], before: Optional[TraceView], after: Optional[TraceView]) -> Dict[str, Any]:
    """One consumption attempt: a SubBefore joined with its SubAfter (either may be missing)."""
    return {"requestId": request_id, "clientHost": (before or after).client_host,  # type: ignore[union-attr]
            "beginTimestamp": before.timestamp if before else None,
            "retryTimes": before.retry_times if before else None,
            "costTime": after.cost_time if after else None, "status": after.status if after else None,
            "contextCode": after.context_code if after else None, "finished": after is not None}


def trace_page(msg_id: str, views: Iterable[TraceView]) -> Dict[str, Any]:
    """The trace of ``msg_id`` from its views (mq.common.trace_data.trace_views): its sends (``Pub``,
    ``EndTransaction``, as TraceView.to_json) and, per consumer group, each consumption attempt (a
    ``SubBefore`` joined with its ``SubAfter`` by request id), oldest first."""
    sends: List[TraceView] = []
    befores: Dict[Optional[str], TraceView] = {}
    afters: Dict[Optional[str], TraceView] = {}
    for v in views:
        if v.msg_type == "SubBefore":
            befores[v.request_id] = v
        elif v.msg_type == "SubAfter":
            afters[v.request_id] = v
        else:
            sends.append(v)
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for request_id in list(befores) + [k for k in afters if k not in befores]:
        before, after = befores.get(request_id), afters.get(request_id)
        group = (before and before.group_name) or (after and after.group_name) or UNKNOWN_GROUP
        groups.setdefault(group, []).append(_attempt(request_id, before, after))
    for attempts in groups.values():
        attempts.sort(key=lambda a: a["beginTimestamp"] or 0)
    sends.sort(key=lambda v: v.timestamp)
    return {"msgId": msg_id, "sends": [v.to_json() for v in sends], "consumers": dict(sorted(groups.items()))}
