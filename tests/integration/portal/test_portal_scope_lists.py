"""An empty scope list is never a grant of every scope (contract §12: scopes are 1..32 entries; only a list
left out means ["*"]). Over real HTTP and gRPC against a test-started stack of the real services: the merchant
API, the session service called directly (the gateway bypassed), the keys service's issue and narrowing."""

from __future__ import annotations

import uuid

import grpc
import pytest
from portal_helpers import csrf, open_portal, page, paid_session, post_form

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack

TEST = common_pb2.MODE_TEST


async def _sessions(stack: ServiceStack, merchant: object) -> list[dict]:
    status, listing = await stack.request("GET", "/v1/sessions", headers=merchant.headers)  # type: ignore[attr-defined]
    assert status == 200, listing
    return listing["data"]


async def test_an_empty_scope_list_is_refused_and_a_missing_one_means_every_scope(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    for path in ("/v1/sessions", "/create_session"):
        status, body = await stack.request(
            "POST", path, json={"amount": "1", "scopes": []}, headers=merchant.headers
        )
        assert status == 400, (path, body)
        assert body["error"]["code"] == "invalid_scopes" and "scopes" in body["error"]["message"], body
    # Nothing was created by the refused requests.
    assert await _sessions(stack, merchant) == []

    # Left out, the grant is every scope (the default); given, it is kept as given.
    status, session = await stack.request(
        "POST", "/v1/sessions", json={"amount": "1"}, headers=merchant.headers
    )
    assert status == 201 and session["scopes"] == ["*"], session
    status, session = await stack.request(
        "POST", "/v1/sessions", json={"amount": "1", "scopes": ["read"]}, headers=merchant.headers
    )
    assert status == 201 and session["scopes"] == ["read"], session


async def test_the_session_service_refuses_an_empty_scope_list_from_any_caller(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant.id, mode=TEST, amount="1.00", set_scopes=True, scopes=[]
            ),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "invalid_scopes"
    assert await _sessions(stack, merchant) == []

    # A caller that says nothing about scopes gets the default; one that names them gets them.
    reply = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(merchant_id=merchant.id, mode=TEST, amount="1.00"), timeout=10
    )
    assert list(reply.session.scopes) == ["*"]
    reply = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=merchant.id, mode=TEST, amount="1.00", set_scopes=True, scopes=["read"]
        ),
        timeout=10,
    )
    assert list(reply.session.scopes) == ["read"]


async def test_the_keys_service_refuses_an_empty_grant_when_issuing_a_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=merchant.id, mode=TEST, session_id=session_id, set_scopes=True, scopes=[]
            ),
            timeout=5,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "invalid_scopes"
    reply = await stack.keys.IssueCustomerAccess(
        keys_pb2.IssueCustomerAccessRequest(
            items=[
                keys_pb2.CustomerAccessItem(
                    merchant_id=merchant.id, mode=TEST, session_id=session_id, set_scopes=True, scopes=[]
                )
            ]
        ),
        timeout=10,
    )
    [result] = reply.results
    assert not result.HasField("access") and result.error.code == "invalid_scopes", result
    status, listing = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    assert status == 200 and listing["data"] == [], listing

    # Without the flag, an empty list keeps meaning the default (every scope), as before.
    key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=session_id), timeout=5
    )
    assert list(key.scopes) == list(key.granted_scopes) == ["*"]


async def test_the_portal_never_narrows_a_key_to_no_scopes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, scopes=["read", "write"])
    cookie = await open_portal(stack, paid.token)
    _status, html = await page(stack, cookie)
    token = csrf(html)
    for fields in (
        [("csrf_token", token), ("scopes_form", "1")],
        [("csrf_token", token), ("scopes", "")],
        [("csrf_token", token), ("scopes", " ,\n ")],
    ):
        status, body = await post_form(stack, cookie, "/access/key/settings", fields)
        assert status == 400 and body["error"]["code"] == "invalid_scopes", (fields, body)
        assert body["error"]["field"] == "scopes"

    # The keys service refuses it too when the gateway is bypassed.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.keys.UpdateCustomerKeySettings(
            keys_pb2.UpdateCustomerKeySettingsRequest(session_id=paid.id, set_scopes=True, scopes=[]),
            timeout=5,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "invalid_scopes"
    status, listing = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    [key] = [k for k in listing["data"] if k["session_id"] == paid.id]
    assert key["scopes"] == key["granted_scopes"] == ["read", "write"], key
