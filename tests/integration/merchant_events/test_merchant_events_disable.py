"""An endpoint that fails without a success for the configured time (5 days; 1 s here) is disabled, a notice is
recorded, and the merchant's contact address (billing profile) gets a mail; without one the notice is kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session

from paygate.billing.v1 import billing_pb2
from support.mail import MailInbox, running_mail_inbox
from support.stack import ServiceStack


@pytest.fixture
def inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {
        **stack_env,
        **FAST_ENV,
        "PAYGATE_MERCHANT_WEBHOOK_DISABLE_AFTER_S": "1",
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(inbox[1]),
        "PAYGATE_MAIL_FROM": "paygate@shop.example",
    }


async def _always_failing(_: int) -> web.StreamResponse:
    return web.Response(status=503, text="x" * 10_000)


async def test_failing_endpoint_is_disabled_with_a_notice_and_a_mail(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _ = inbox
    receiver = await Receiver(_always_failing).start()
    try:
        merchant = await stack.create_merchant()
        await stack.billing.UpdateBillingProfile(
            billing_pb2.UpdateBillingProfileRequest(
                profile=billing_pb2.BillingProfile(
                    merchant_id=merchant.id, seller=billing_pb2.Party(name="Acme", email="ops@acme.example")
                )
            ),
            timeout=5,
        )
        endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
        await paid_session(stack, merchant)
        path = f"/v1/webhook_endpoints/{endpoint['id']}"

        async def disabled() -> dict | None:
            _, body = await stack.request("GET", path, headers=merchant.headers)
            return body if body["status"] == "disabled" else None

        body = await eventually(disabled, timeout=30)
        assert body["disabled_reason"] == "failing_for_5_days" and body["failing_since"] is not None
        await eventually(lambda: _value(handler.messages), timeout=20)
        mail = handler.messages[0]
        assert mail["To"] == "ops@acme.example" and "disabled" in mail["Subject"]
        assert endpoint["secret"] not in mail.get_content()
        # The log kept at most 4 KiB of each answer, and no delivery is attempted any more.
        _, log = await stack.request(
            "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=merchant.headers
        )
        assert all(len(a["response_body"]) == 4096 for a in log["data"])
        calls = receiver.calls
        await paid_session(stack, merchant)
        rows = await _admin(stack, "SELECT kind, mail_status FROM session.webhook_notices")
        assert [(r["kind"], r["mail_status"]) for r in rows] == [("webhook_endpoint.disabled", "sent")]
        assert receiver.calls == calls
    finally:
        await receiver.stop()


async def _admin(stack: ServiceStack, sql: str) -> list:
    conn = await stack.db.admin()
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _value(value: object) -> object:
    return value
