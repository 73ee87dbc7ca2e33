"""The session service's outbox dispatcher fulfils the rows of one claim with one batched call per downstream
service (issue 16), keeps each session's failure to itself, and stays exactly-once; the customer's mail is
composed from the batch's reply, without GetMerchant or GetAccessLink calls. Real services, real gRPC, a real
SMTP server; the RPCs are counted by each service's own Prometheus figures."""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest
from batch_support import admin_fetch, admin_val, handled, invoice_item

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from support import polling
from support.mail import MailInbox, fast_mail_fulfilment_env, running_mail_inbox
from support.stack import ServiceStack

_PAID = common_pb2.Money(amount_minor="4990", currency="EUR", exponent=2)


@pytest.fixture
def inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {**stack_env, **fast_mail_fulfilment_env(inbox[1])}


async def _paid_sessions(stack: ServiceStack, merchant_id: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        reply = await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant_id,
                amount="49.90",
                mode=common_pb2.MODE_TEST,
                customer_email=f"buyer{n}@example.com",
            ),
            timeout=10,
        )
        ids.append(reply.session.id)
    return ids


async def _apply(stack: ServiceStack, session_id: str) -> session_pb2.ApplyPaymentEventResponse:
    return await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=session_id,
            provider="onecom",
            provider_event_id=f"evt_{session_id}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            provider_reference=f"tx_{session_id}",
            amount=_PAID,
        ),
        timeout=10,
    )


async def _pay_all_then_one_claim(stack: ServiceStack, session_ids: list[str]) -> None:
    """Pay every session while billing and keys are down, then let ONE dispatcher claim take all their rows:
    the session service is restarted (its dispatcher claims on start) once every row is due at once."""
    await stack.stop_service("billing")
    await stack.stop_service("keys")
    for session_id in session_ids:
        await _apply(stack, session_id)
    await stack.stop_service("session")
    conn = await stack.db.admin()
    try:
        moved = await conn.execute(
            """UPDATE session.outbox SET next_attempt_at = now(), locked_until = NULL
                WHERE kind = 'fulfil' AND status = 'pending'"""
        )
    finally:
        await conn.close()
    assert moved == f"UPDATE {len(session_ids)}"
    await stack.start_service("keys")
    await stack.start_service("billing")
    await stack.start_service("session")


async def _fulfilled(stack: ServiceStack, session_ids: list[str]) -> bool:
    done = await admin_val(
        stack,
        "SELECT count(*) FROM session.sessions WHERE id = ANY($1::uuid[]) AND fulfilment_status = 'done'",
        session_ids,
    )
    return done == len(session_ids)


async def test_one_claim_is_fulfilled_with_one_call_per_downstream_and_mailed_without_extra_calls(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _port = inbox
    merchant = await stack.create_merchant("Acme Widgets", "acme")
    sessions = await _paid_sessions(stack, merchant.id, 12)
    await _pay_all_then_one_claim(stack, sessions)

    await polling.eventually(lambda: _fulfilled(stack, sessions), timeout=30, interval=0.1)

    async def all_mailed() -> bool:
        return len(handler.messages) == len(sessions)

    await polling.eventually(all_mailed, timeout=30, interval=0.1)

    # One pass, one call per downstream service; none of the per-session calls of before.
    assert handled(stack, "billing", "IssueInvoices") == 1
    assert handled(stack, "keys", "IssueCustomerAccess") == 1
    for service, method in (
        ("billing", "IssueInvoice"),
        ("keys", "IssueCustomerKey"),
        ("keys", "IssueAccessToken"),
        ("keys", "GetMerchant"),
        ("keys", "GetAccessLink"),
    ):
        assert handled(stack, service, method) == 0, method
    # Exactly one invoice, key and token per session; the ids stored are those downstream.
    rows = await admin_fetch(
        stack,
        """SELECT s.id::text AS id, s.invoice_id::text AS invoice_id, s.api_key_id::text AS key_id,
                  (SELECT count(*) FROM billing.invoices i WHERE i.session_id = s.id::text) AS invoices,
                  (SELECT count(*) FROM keys.api_keys k WHERE k.session_id = s.id) AS keys,
                  (SELECT count(*) FROM keys.access_tokens t WHERE t.session_id = s.id) AS tokens
             FROM session.sessions s WHERE s.id = ANY($1::uuid[])""",
        sessions,
    )
    assert all((r["invoices"], r["keys"], r["tokens"]) == (1, 1, 1) for r in rows), rows
    # Each mail carries its own session's access link, the mail copy GetAccessLink builds (with its proof).
    by_recipient = {str(m["To"]): m for m in handler.messages}
    for n, session_id in enumerate(sessions):
        message = by_recipient[f"buyer{n}@example.com"]
        assert "Acme Widgets" in str(message["From"])
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        [url] = re.findall(r"\S+/access\?token=\S+", text)
        link = await stack.keys.GetAccessLink(keys_pb2.GetAccessLinkRequest(session_id=session_id), timeout=5)
        assert url == link.mail_url and url.startswith(link.url + "&proof=")


async def test_a_failing_session_is_retried_alone_while_the_others_of_its_pass_complete(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _port = inbox
    merchant = await stack.create_merchant("Acme", "acme")
    sessions = await _paid_sessions(stack, merchant.id, 6)
    poisoned = sessions[2]
    # Billing already has an invoice of another amount for this session: its item is refused every time.
    await stack.billing.IssueInvoice(invoice_item(merchant.id, poisoned, minor=1), timeout=10)
    await _pay_all_then_one_claim(stack, sessions)
    healthy = [s for s in sessions if s != poisoned]
    await polling.eventually(lambda: _fulfilled(stack, healthy), timeout=30, interval=0.1)

    async def retried() -> bool:
        attempts = await admin_val(
            stack,
            "SELECT attempts FROM session.outbox WHERE kind = 'fulfil' AND session_id = $1::uuid",
            poisoned,
        )
        return attempts >= 3

    await polling.eventually(retried, timeout=30, interval=0.1)
    row = (
        await admin_fetch(
            stack,
            """SELECT o.status, o.last_error, s.fulfilment_status, s.invoice_id, s.api_key_id, s.access_token_id
                 FROM session.outbox o JOIN session.sessions s ON s.id = o.session_id
                WHERE o.kind = 'fulfil' AND o.session_id = $1::uuid""",
            poisoned,
        )
    )[0]
    assert row["status"] == "pending" and row["fulfilment_status"] == "pending"
    assert "invoice_amount_conflict" in row["last_error"]
    # Its key and link were issued in the same pass and are kept; only the invoice is retried.
    assert row["invoice_id"] is None and row["api_key_id"] and row["access_token_id"]
    assert handled(stack, "billing", "IssueInvoice") == 0 and handled(stack, "keys", "IssueCustomerKey") == 0

    # Exactly once under redelivery: the same payment events again change nothing and queue nothing.
    stored = await admin_fetch(
        stack,
        "SELECT id, invoice_id, api_key_id, access_token_id FROM session.sessions WHERE id = ANY($1::uuid[])",
        healthy,
    )
    for session_id in sessions:
        reply = await _apply(stack, session_id)
        assert reply.outcome == session_pb2.APPLY_OUTCOME_DUPLICATE
    outbox = await admin_val(stack, "SELECT count(*) FROM session.outbox WHERE kind = 'fulfil'")
    assert outbox == len(sessions)
    # ... and a pass that runs again (a lease that ran out mid-call) gets the same invoices and keys back.
    again = await stack.billing.IssueInvoices(
        billing_pb2.IssueInvoicesRequest(items=[invoice_item(merchant.id, s, minor=4990) for s in healthy]),
        timeout=10,
    )
    assert {r.invoice.id for r in again.results} == {str(r["invoice_id"]) for r in stored}
    invoices = await admin_val(
        stack, "SELECT count(*) FROM billing.invoices WHERE merchant_id = $1", merchant.id
    )
    assert invoices == len(sessions)  # five fulfilled, and the poisoned session's own
    assert len(handler.messages) == len(healthy)


class _OldPeer:
    """A billing or keys service from before the batched calls, as a rolling deploy meets it: a proxy that
    forwards every call except IssueInvoices and IssueCustomerAccess, which it does not know (UNIMPLEMENTED)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = 0

    async def start(self) -> None:
        channel = self._channel = grpc.aio.insecure_channel(self.target)

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
                method = details.method
                if method.endswith(("/IssueInvoices", "/IssueCustomerAccess")):
                    return None
                call = channel.unary_unary(method)

                async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                    return await call(request, timeout=10)

                return grpc.unary_unary_rpc_method_handler(forward)

        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers([Handler()])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(0)
        await self._channel.close()


async def test_peers_without_the_batched_calls_are_asked_one_session_at_a_time(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _port = inbox
    merchant = await stack.create_merchant("Acme", "acme")
    old_billing, old_keys = _OldPeer(stack.addr("billing")), _OldPeer(stack.addr("keys"))
    await old_billing.start()
    await old_keys.start()
    try:
        await stack.stop_service("session")
        real = dict(stack.ports)
        stack.ports["billing"], stack.ports["keys"] = old_billing.port, old_keys.port
        await stack.start_service("session")
        stack.ports["billing"], stack.ports["keys"] = real["billing"], real["keys"]
        sessions = await _paid_sessions(stack, merchant.id, 4)
        for session_id in sessions:
            await _apply(stack, session_id)
        await polling.eventually(lambda: _fulfilled(stack, sessions), timeout=30, interval=0.1)

        async def all_mailed() -> bool:
            return len(handler.messages) == len(sessions)

        await polling.eventually(all_mailed, timeout=30, interval=0.1)
    finally:
        await old_billing.stop()
        await old_keys.stop()
    assert (
        handled(stack, "billing", "IssueInvoices") == 0 and handled(stack, "keys", "IssueCustomerAccess") == 0
    )
    assert handled(stack, "billing", "IssueInvoice") == len(sessions)
    assert handled(stack, "keys", "IssueCustomerKey") == len(sessions)
    assert handled(stack, "keys", "IssueAccessToken") == len(sessions)
    # Without a batched reply to remember, each mail asks for its link as before.
    assert handled(stack, "keys", "GetAccessLink") == len(sessions)
    invoices = await admin_val(
        stack, "SELECT count(*) FROM billing.invoices WHERE merchant_id = $1", merchant.id
    )
    assert invoices == len(sessions)
