"""Messages of a topic in a time range, page by page (rocketmq-dashboard 2.x's paged query by topic).

The range is turned into an offset window per queue (SEARCH_OFFSET_BY_TIMESTAMP on each master), the windows
are laid end to end in (broker, queue) order, and a page is ``size`` messages from ``page × size`` on, pulled
from the queues it falls in: every page costs two offset searches per queue and the pulls of one page, never a
read of the pages before it. ``total`` is the number of messages in the windows.
"""

from __future__ import annotations

import time

from twisted.internet import defer

from mq.admin.message_commands import _queue_window, _read_queue
from mq.admin.output import message_json
from mq.admin.values import MessageQueue, route_masters
from mq.common import mixall
from mq.console.forms import BadRequest, Context, Form, route
from mq.console.views import short_bodies

#: Queues one query may search (two offset searches each).
MAX_QUEUES = 4096
MAX_PAGE = 1_000_000


@route("messages/page", fields=["topic", "begin", "end", "page", "size"])
@defer.inlineCallbacks
def messages_page(ctx: Context, form: Form):
    topic = form.topic()
    begin, end = form.timestamp("begin"), form.timestamp("end")
    if begin is None:
        raise BadRequest("begin: missing")
    end = end if end is not None else int(time.time() * 1000)
    if begin > end:
        raise BadRequest("begin: after end")
    size = form.integer("size", 1, ctx.config.max_messages, 20)
    page = form.integer("page", 0, MAX_PAGE, 0)
    route_data = yield ctx.api.topic_route(topic)
    masters = route_masters(route_data)
    queues = [(q.broker_name, masters[q.broker_name], qid)
              for q in sorted(route_data.queue_datas, key=lambda q: q.broker_name) if q.broker_name in masters
              for qid in range(q.read_queue_nums)]
    if len(queues) > MAX_QUEUES:
        raise BadRequest(f"topic: {len(queues)} queues, more than {MAX_QUEUES} to search")
    windows = []
    for name, addr, qid in queues:
        mq = MessageQueue(topic, name, qid)
        low, high = yield _queue_window(ctx.api, addr, mq, begin, end)
        windows.append((mq, addr, low, max(low, high)))
    total = sum(high - low for _, _, low, high in windows)
    skip, wanted, messages = page * size, size, []
    for mq, addr, low, high in windows:
        count = high - low
        if skip >= count:
            skip -= count
            continue
        got = yield _read_queue(ctx.api, addr, mixall.TOOLS_CONSUMER_GROUP, mq, low + skip, high, wanted)
        skip = 0
        messages.extend(message_json(m, mq.broker_name) for m in got)
        wanted = size - len(messages)
        if wanted <= 0:
            break
    return {"topic": topic, "begin": begin, "end": end, "page": page, "size": size, "total": total,
            "pages": (total + size - 1) // size, "messages": short_bodies(messages[:size])}
