"""A lookup at a CommitLog offset a request names (VIEW_MESSAGE_BY_ID, a send-back) that is no record's start is
not found: no error-level log line, no corrupt record counted (anyone could flood the log and raise false
corruption alarms). An offset the store wrote down that names a bad record still is corruption."""

from __future__ import annotations

from twisted.logger import LogLevel

from mq.client.simple import send_back_request, send_request, view_message_request
from mq.common.message import decode_offset_msg_id
from mq.remoting.codes import ResponseCode as RC


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def call(b, request):
    return b.dispatcher.processors[request.code](request, _Channel())


def send_one(b, topic):
    r = call(b, send_request(topic, b"a body of some length", queue_id=0))
    assert r.code == RC.SUCCESS, r.remark
    return decode_offset_msg_id(r.ext_fields["msgId"])[1]


def errors(log_events):
    return [e for e in log_events if e.get("log_level") in (LogLevel.error, LogLevel.critical)]


def test_a_view_by_an_offset_inside_a_record_is_not_found_and_not_corruption(make_broker, log_events):
    b = make_broker()
    phy = send_one(b, "QView")
    assert call(b, view_message_request(phy)).code == RC.SUCCESS
    for offset in (phy + 1, phy + 4, phy + 88, phy + 100):
        r = call(b, view_message_request(offset))
        assert (r.code, r.remark) == (RC.SYSTEM_ERROR, f"can not find message by the offset, {offset}")
    assert errors(log_events) == []
    assert b.store.commitlog.corrupt_records == 0
    assert b.store.stats().corrupt_records_detected == 0


def test_a_send_back_of_an_offset_inside_a_record_is_not_corruption(make_broker, log_events):
    b = make_broker()
    phy = send_one(b, "QBack")
    r = call(b, send_back_request("qgroup", phy + 1, origin_topic="QBack"))
    assert r.code == RC.SYSTEM_ERROR and f"{phy + 1}" in r.remark
    assert errors(log_events) == [] and b.store.commitlog.corrupt_records == 0


def test_an_index_or_queue_entry_naming_a_bad_record_is_still_corruption(make_broker, log_events):
    """Only an offset a request named is excused: one the store wrote down is counted and logged."""
    b = make_broker()
    phy = send_one(b, "QReal")
    assert b.store.look_message_by_offset(phy + 1) is None
    assert b.store.commitlog.corrupt_records == 1 and len(errors(log_events)) == 1
