"""What a consumer answers to CONSUME_MESSAGE_DIRECTLY (309): RocketMQ's ``ConsumeMessageDirectlyResult``.

An admin tool (the console's "resend to this consumer", ``mqadmin queryMsgById -g GROUP -d CLIENTID``) asks a
broker, which hands the stored message to one online client of the group; the client runs its listener on it
at once, outside its queues (offsets and retries untouched), and answers how that went. Shared by the client
that builds the answer and the tools that read it.
"""

from __future__ import annotations

from typing import Optional

import attr

from mq.common import fastjson

#: consumeResult values (Java's CMResult)
CR_SUCCESS = "CR_SUCCESS"
CR_LATER = "CR_LATER"
CR_ROLLBACK = "CR_ROLLBACK"
CR_COMMIT = "CR_COMMIT"
CR_THROW_EXCEPTION = "CR_THROW_EXCEPTION"
CR_RETURN_NULL = "CR_RETURN_NULL"


@attr.s(slots=True)
class ConsumeMessageDirectlyResult:
    order: bool = attr.ib(default=False)
    auto_commit: bool = attr.ib(default=True)
    consume_result: Optional[str] = attr.ib(default=None)
    remark: Optional[str] = attr.ib(default=None)
    spent_time_mills: int = attr.ib(default=0)

    def to_json(self) -> dict:
        out = {"order": self.order, "autoCommit": self.auto_commit, "consumeResult": self.consume_result,
               "remark": self.remark, "spentTimeMills": self.spent_time_mills}
        return {k: v for k, v in out.items() if v is not None}  # fastjson leaves nulls out

    def encode(self) -> bytes:
        return fastjson.dumps_bytes(self.to_json())

    @classmethod
    def from_json(cls, data: dict) -> "ConsumeMessageDirectlyResult":
        return cls(order=bool(data.get("order", False)), auto_commit=bool(data.get("autoCommit", True)),
                   consume_result=data.get("consumeResult"), remark=data.get("remark"),
                   spent_time_mills=int(data.get("spentTimeMills") or 0))

    @classmethod
    def decode(cls, body: bytes) -> "ConsumeMessageDirectlyResult":
        """Raises ValueError for a body that is not such an object."""
        data = fastjson.loads(body) if body else {}
        if not isinstance(data, dict):
            raise ValueError("a ConsumeMessageDirectlyResult is a JSON object")
        return cls.from_json(data)

    def __str__(self) -> str:
        """As Java's toString, which ``mqadmin queryMsgById -d`` prints."""
        remark = "null" if self.remark is None else self.remark
        return (f"ConsumeMessageDirectlyResult [order={str(self.order).lower()}, autoCommit="
                f"{str(self.auto_commit).lower()}, consumeResult={self.consume_result}, remark={remark}, "
                f"spentTimeMills={self.spent_time_mills}]")
