"""Shared helpers of the keys integration tests (imported as a plain module; pytest puts this folder on
sys.path because there is no __init__.py)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from http.cookies import SimpleCookie

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE


@dataclass
class IssuedAccess:
    merchant: Merchant
    session_id: str
    key: keys_pb2.ApiKey
    link: keys_pb2.AccessLink


async def issue_access(
    stack: ServiceStack, merchant: Merchant, mode: int = TEST, session_id: str | None = None
) -> IssuedAccess:
    """What fulfilment does for a paid session: issue the customer key and the access token."""
    sid = session_id or str(uuid.uuid4())
    key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=mode, session_id=sid), timeout=5
    )
    await stack.keys.IssueAccessToken(
        keys_pb2.IssueAccessTokenRequest(merchant_id=merchant.id, session_id=sid, mode=mode), timeout=5
    )
    link = await stack.keys.GetAccessLink(keys_pb2.GetAccessLinkRequest(session_id=sid), timeout=5)
    return IssuedAccess(merchant, sid, key, link)


def signing_pem(stack: ServiceStack) -> tuple[str, str]:
    entry = json.loads(stack.env["PAYGATE_JWT_SIGNING_KEYS"])[-1]
    return entry["kid"], entry["pem"]


def cookie_from(set_cookie_headers: list[str]) -> tuple[str, str, dict[str, str | bool]]:
    """(name, value, attributes) of the single cookie a response sets."""
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookie_headers:
        jar.load(header)
    assert len(jar) == 1, set_cookie_headers
    ((name, morsel),) = jar.items()
    attrs = {k: v for k, v in morsel.items() if v}
    return name, morsel.value, attrs
