"""``RemotingCommand``: one request or response of the RocketMQ remoting protocol."""

from __future__ import annotations

from typing import Dict, Optional

import attr

from mq.remoting.codes import (
    CURRENT_VERSION,
    FLAG_ONEWAY,
    FLAG_RESPONSE,
    LanguageCode,
    ResponseCode,
    SerializeType,
)


@attr.s(slots=True, eq=True, repr=True)
class RemotingCommand:
    """A command as it travels: the standard header fields, the custom ``ext_fields`` and the body.

    ``ext_fields`` values are always strings once decoded (numbers and booleans that clients send are
    normalised on the way in), as every RocketMQ reader expects.
    """

    code: int = attr.ib()
    opaque: int = attr.ib(default=0)
    flag: int = attr.ib(default=0)
    remark: Optional[str] = attr.ib(default=None)
    ext_fields: Optional[Dict[str, str]] = attr.ib(default=None)
    body: bytes = attr.ib(default=b"")
    language: int = attr.ib(default=LanguageCode.JAVA)
    version: int = attr.ib(default=CURRENT_VERSION)
    serialize_type: int = attr.ib(default=SerializeType.JSON)
    #: The whole frame, when its builder encoded it already (a ``ResponseTemplate``): ``encode_command`` sends it
    #: as is. Whoever changes a field of such a command afterwards sets this back to None.
    frame: Optional[bytes] = attr.ib(default=None, eq=False, repr=False)

    @property
    def is_response(self) -> bool:
        return bool(self.flag & FLAG_RESPONSE)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & FLAG_ONEWAY)

    @classmethod
    def request(
        cls,
        code: int,
        ext_fields: Optional[Dict[str, str]] = None,
        body: bytes = b"",
        oneway: bool = False,
        serialize_type: int = SerializeType.JSON,
        language: int = LanguageCode.PYTHON,
    ) -> "RemotingCommand":
        """A new request; its ``opaque`` is assigned when it is sent."""
        return cls(
            code,
            0,
            FLAG_ONEWAY if oneway else 0,
            None,
            ext_fields,
            body,
            language,
            CURRENT_VERSION,
            serialize_type,
        )

    def response(
        self,
        code: int = ResponseCode.SUCCESS,
        remark: Optional[str] = None,
        ext_fields: Optional[Dict[str, str]] = None,
        body: bytes = b"",
    ) -> "RemotingCommand":
        """The response to this request: same opaque, response flag, same serialization type."""
        return RemotingCommand(
            code,
            self.opaque,
            FLAG_RESPONSE,
            remark,
            ext_fields,
            body,
            LanguageCode.JAVA,
            CURRENT_VERSION,
            self.serialize_type,
        )

    def field(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One ``ext_fields`` value, or ``default`` when absent."""
        ext = self.ext_fields
        if ext is None:
            return default
        return ext.get(name, default)
