"""Why a session has no provider page is shown when the merchant reads the session later, not only on create.

The create answers `provider_checkout_error: {code, message}` when the provider's page could not be made; the
gateway keeps it in its own schema, so `GET /v1/sessions/{id}` and the list show it (across a gateway restart)
until a later attempt records the page.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from support.stack import ServiceStack
from support.stripe_fake import FakeStripe
from webhook_gateway.adapters.provider_payments_repository import ProviderPaymentsRepository
from webhook_gateway.entrypoints.app import CHECKOUT_ERROR_MARGIN_S
from webhook_gateway.entrypoints.request_body import MAX_EXPIRES_IN_SECONDS


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripe) -> dict[str, str]:
    return {**stack_env, **fake_stripe.env()}


async def _create(stack: ServiceStack, headers: dict[str, str], **body: object) -> tuple[int, dict]:
    payload = {"amount": "99.99", "currency": "EUR", "provider": "stripe", **body}
    return await stack.request("POST", "/v1/sessions", json=payload, headers=headers)


async def _listed(stack: ServiceStack, headers: dict[str, str], sid: str) -> dict:
    status, page = await stack.request("GET", "/v1/sessions?limit=100", headers=headers)
    assert status == 200, page
    [listed] = [s for s in page["data"] if s["id"] == sid]
    return listed


async def test_get_and_list_show_the_create_error_until_a_retry_records_the_page(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    fake_stripe.down = True
    status, body = await _create(stack, merchant.headers)
    assert status == 201, body
    error = body["provider_checkout_error"]
    assert error["code"] == "provider_unavailable"
    sid = body["id"]

    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200, fetched
    assert "provider_checkout_url" not in fetched
    assert fetched["provider_checkout_error"] == error
    assert (await _listed(stack, merchant.headers, sid))["provider_checkout_error"] == error

    # Kept in the gateway's own schema, not in the memory of one process.
    await stack.stop_service("gateway")
    await stack.start_service("gateway")
    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200 and fetched["provider_checkout_error"] == error

    # A later attempt that succeeds clears it: the session now has its page.
    fake_stripe.down = False
    status, again = await stack.request(
        "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
    )
    assert status == 200, again
    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200 and fetched["provider_checkout_url"] == again["provider_checkout_url"]
    assert "provider_checkout_error" not in fetched
    assert "provider_checkout_error" not in await _listed(stack, merchant.headers, sid)


async def test_a_later_failure_replaces_the_error_and_sessions_with_a_page_have_none(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    status, ok = await _create(stack, merchant.headers)
    assert status == 201 and "provider_checkout_error" not in ok
    status, fetched = await stack.request("GET", f"/v1/sessions/{ok['id']}", headers=merchant.headers)
    assert status == 200 and "provider_checkout_error" not in fetched

    fake_stripe.down = True
    status, body = await _create(stack, merchant.headers)
    sid = body["id"]
    assert body["provider_checkout_error"]["code"] == "provider_unavailable"
    # Stripe now refuses instead of failing: the merchant's retry answers the new reason, and GET shows it.
    fake_stripe.down = False
    fake_stripe.api_key = "sk_test_other_" + "0" * 16  # the gateway's key is no longer accepted
    status, again = await stack.request(
        "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
    )
    assert status >= 400, again
    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200
    assert again["error"]["code"] != "provider_unavailable"
    assert fetched["provider_checkout_error"] == {
        "code": again["error"]["code"],
        "message": again["error"]["message"],
    }


async def test_reasons_older_than_the_longest_session_are_forgotten(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    """One row is kept per session whose page could not be made, and a session that is never retried keeps it:
    the gateway's clean-up removes those older than the longest a session can live, and no younger one."""
    merchant = await stack.create_merchant()
    fake_stripe.down = True
    sids = []
    for _ in range(2):
        status, body = await _create(stack, merchant.headers)
        assert status == 201 and "provider_checkout_error" in body, body
        sids.append(body["id"])
    old, young = sids
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE gateway.provider_checkout_errors SET failed_at = now() - interval '92 days' WHERE session_id = $1",
            uuid.UUID(old),
        )
    finally:
        await conn.close()
    age_s = MAX_EXPIRES_IN_SECONDS + CHECKOUT_ERROR_MARGIN_S
    assert (
        await ProviderPaymentsRepository(stack.pools["gateway"]).remove_checkout_errors_older_than(age_s) == 1
    )
    kept = await stack.pools["gateway"].fetch("SELECT session_id FROM provider_checkout_errors")
    assert {str(row["session_id"]) for row in kept} == {young}
