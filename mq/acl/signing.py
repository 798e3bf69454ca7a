"""Request signatures as RocketMQ's ``AclClientRPCHook`` makes them (HMAC-SHA1, Base64).

The signed content is every extField but ``Signature``, sorted by key, values only, concatenated, UTF-8,
followed by the body. One function builds that content so the client signing and the broker checking it
can never disagree.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from typing import Collection, Mapping, Optional

import attr

from mq.remoting.command import RemotingCommand

ACCESS_KEY = "AccessKey"
SECRET_KEY = "SecretKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"
#: The extra field the C++ and Node clients send (and sign) beside AccessKey.
ONS_CHANNEL = "OnsChannel"

#: An extField Java clients add by hand to QUERY_MESSAGE (lookup by UNIQ_KEY); see ``Credentials.sign_request``.
UNIQUE_KEY_QUERY = "_UNIQUE_KEY_QUERY"
#: MQVersion ordinal of 4.9.3: 5.x brokers leave ``_UNIQUE_KEY_QUERY`` out of the checked content up to it.
VERSION_4_9_3 = 399

#: The request code, signed with the rest by mq's own signers: RocketMQ's signature covers the extField values
#: and the body but not the code, so a captured signed request without fields (GET_BROKER_RUNTIME_INFO, say)
#: would pass as any other request without fields (DELETE_EXPIRED_COMMITLOG). Brokers that do not know the
#: field sign-check it like any other; mq's refuses a request whose code is not the one signed.
SIGNED_CODE = "mqRequestCode"

#: Environment variables the tools read credentials from when no option names them.
ENV_ACCESS_KEY = "MQ_ACCESS_KEY"
ENV_SECRET_KEY = "MQ_SECRET_KEY"


def signing_content(ext_fields: Optional[Mapping[str, str]], body: Optional[bytes],
                    leave_out: Collection[str] = ()) -> bytes:
    """The bytes a signature covers: sorted extField values (less ``Signature`` and ``leave_out``) + body."""
    fields = ext_fields or {}
    keys = sorted(fields)
    if SIGNATURE in fields:
        keys.remove(SIGNATURE)
    if leave_out:
        keys = [k for k in keys if k not in leave_out]
    # map() keeps the per-field work in C: this runs for every request a broker with ACL on receives.
    data = "".join(map(str, map(fields.__getitem__, keys))).encode("utf-8")
    return data + body if body else data


def sign(secret_key: str, content: bytes) -> str:
    """HMAC-SHA1 of ``content`` with ``secret_key``, standard padded Base64 (Java's ``AclSigner``)."""
    mac = _keyed(secret_key).copy()
    mac.update(content)
    return base64.b64encode(mac.digest()).decode("ascii")


@functools.lru_cache(maxsize=1024)
def _keyed(secret_key: str) -> "hmac.HMAC":
    """An HMAC-SHA1 already keyed with ``secret_key``: copying it costs less than keying a new one per request
    (and less than ``hmac.digest``, whose digest lookup by name is slow on OpenSSL 3)."""
    return hmac.new(secret_key.encode("utf-8"), digestmod=hashlib.sha1)


@attr.s(frozen=True, slots=True)
class Credentials:
    """An account to sign requests with (``SessionCredentials`` in RocketMQ)."""

    access_key: str = attr.ib()
    secret_key: str = attr.ib(repr=False)
    security_token: Optional[str] = attr.ib(default=None, repr=False)

    def sign_request(self, request: RemotingCommand) -> RemotingCommand:
        """Add ``AccessKey`` (``SecurityToken``) and ``Signature`` to ``request``'s extFields; returns it."""
        fields = dict(request.ext_fields or {})
        fields.pop(SIGNATURE, None)
        fields[ACCESS_KEY] = self.access_key
        fields[SIGNED_CODE] = str(int(request.code))  # int(): an IntEnum prints its name before Python 3.11
        if self.security_token:
            fields[SECURITY_TOKEN] = self.security_token
        leave_out: tuple = ()
        if UNIQUE_KEY_QUERY in fields:
            # 4.9.x brokers never check this field, 5.x brokers only for versions above 4.9.3: unsigned and
            # announced as 4.9.3, the request passes both (apache/rocketmq#5310); mq's broker takes either.
            leave_out = (UNIQUE_KEY_QUERY,)
            request.version = min(request.version, VERSION_4_9_3)
        fields[SIGNATURE] = sign(self.secret_key, signing_content(fields, request.body, leave_out))
        request.ext_fields = fields
        return request

    @classmethod
    def from_options(cls, access_key: Optional[str] = None, secret_key: Optional[str] = None,
                     environ: Optional[Mapping[str, str]] = None) -> Optional["Credentials"]:
        """Credentials from options, else ``MQ_ACCESS_KEY``/``MQ_SECRET_KEY``; None when neither is set.

        Raises ValueError when only one half is given.
        """
        env = os.environ if environ is None else environ
        ak = access_key or env.get(ENV_ACCESS_KEY) or None
        sk = secret_key or env.get(ENV_SECRET_KEY) or None
        if ak is None and sk is None:
            return None
        if not ak or not sk:
            raise ValueError("an access key needs a secret key and a secret key an access key")
        return cls(ak, sk)
