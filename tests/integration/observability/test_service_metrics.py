"""Every service's Prometheus metrics after a real paid session: RPCs by method and code with latency on the
three gRPC services, the outbox, quarantine and inbox gauges, database pool use, webhook verification
failures, merchant webhook deliveries; every metric the README's "## Metrics" table names, on the service it
names (the table here is the source of truth, compared with the README's so the two cannot drift); and none
of it on the gateway's public port (contract §6a)."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from session_service.service_layer.webhook_delivery import attempt_result
from support import polling
from support.merchant_webhooks import Receiver, create_endpoint
from support.metrics_page import metrics_port, sample
from support.stack import Merchant, ServiceStack

SERVICES = ("gateway", "session", "billing", "keys")
README = Path(__file__).resolve().parents[3] / "README.md"

# The README's metric table as (type, services) by name: the test's source of truth. Counter names carry their
# `_total` as the README writes them; histograms are sampled as `<name>_bucket`.
GRPC = frozenset({"session", "billing", "keys"})
ALL = frozenset(SERVICES)
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "paygate_grpc_server_handled_total": ("counter", GRPC),
    "paygate_grpc_server_handling_seconds": ("histogram", GRPC),
    "paygate_db_pool_connections": ("gauge", ALL),
    "paygate_outbox_pending": ("gauge", frozenset({"session"})),
    "paygate_outbox_oldest_pending_age_seconds": ("gauge", frozenset({"session"})),
    "paygate_quarantine_open_entries": ("gauge", frozenset({"session"})),
    "paygate_inbox_pending": ("gauge", frozenset({"gateway"})),
    "paygate_inbox_oldest_pending_age_seconds": ("gauge", frozenset({"gateway"})),
    "paygate_inbox_unknown_session_events": ("gauge", frozenset({"gateway"})),
    "paygate_http_requests_total": ("counter", frozenset({"gateway"})),
    "paygate_http_request_seconds": ("histogram", frozenset({"gateway"})),
    "paygate_webhook_events_total": ("counter", frozenset({"gateway"})),
    "paygate_webhook_verification_failures_total": ("counter", frozenset({"gateway"})),
    "paygate_chain_watcher_lag_blocks": ("gauge", frozenset({"gateway"})),
    "paygate_chain_watcher_last_pass_age_seconds": ("gauge", frozenset({"gateway"})),
    "paygate_chain_untraced_blocks": ("gauge", frozenset({"gateway"})),
    "paygate_peer_up": ("gauge", frozenset({"gateway"})),
    "paygate_portal_email_proofs_total": ("counter", frozenset({"gateway"})),
    # The provider API client (One.com) and reconciliation: sampled once the stack calls a provider's API.
    "paygate_provider_api_calls_total": ("counter", frozenset({"gateway"})),
    "paygate_provider_circuit_state": ("gauge", frozenset({"gateway"})),
    "paygate_provider_circuit_opened_total": ("counter", frozenset({"gateway"})),
    "paygate_provider_refund_asks_waiting": ("gauge", frozenset({"gateway"})),
    "paygate_provider_refund_asks_oldest_age_seconds": ("gauge", frozenset({"gateway"})),
    "paygate_reconcile_checks_total": ("counter", frozenset({"gateway"})),
    "paygate_fulfilment_seconds": ("histogram", frozenset({"session"})),
    # Hash-chain anchors (issue #20): every gRPC service anchors its audit chains' heads.
    "paygate_audit_chain_head_sequence": ("gauge", GRPC),
    "paygate_audit_chains": ("gauge", GRPC),
    "paygate_audit_anchor_timestamp_seconds": ("gauge", GRPC),
    "paygate_audit_anchor_digest_prefix": ("gauge", GRPC),
    # Registered by every service's ServiceMetrics (0 where nothing is sampled, as on billing and keys).
    "paygate_metrics_sample_errors_total": ("counter", ALL),
    "paygate_merchant_webhook_deliveries_total": ("counter", frozenset({"session"})),
    "paygate_merchant_webhook_delivery_seconds": ("histogram", frozenset({"session"})),
    "paygate_merchant_webhook_pending": ("gauge", frozenset({"session"})),
    "paygate_merchant_webhook_oldest_pending_age_seconds": ("gauge", frozenset({"session"})),
}
# Sampled only with a chain configured (the watcher writes `chain_cursors`), or a provider's API: without one
# the metric is registered (its HELP line is served) but has no series. Every other metric must have a sample.
REGISTERED_ONLY = frozenset(
    {
        "paygate_chain_watcher_lag_blocks",
        "paygate_chain_watcher_last_pass_age_seconds",
        "paygate_chain_untraced_blocks",
        # No provider API is configured in this stack (test_onecom_*.py and the reconciliation tests sample them).
        "paygate_provider_api_calls_total",
        "paygate_provider_circuit_state",
        "paygate_provider_circuit_opened_total",
        "paygate_reconcile_checks_total",
    }
)


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # Merchant webhooks to a receiver on loopback (a test endpoint), polled often so the test does not wait.
    return {
        **stack_env,
        "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true",
        "PAYGATE_MERCHANT_WEBHOOK_POLL_MS": "100",
        "PAYGATE_OUTBOX_POLL_MS": "100",
        # An event for no known session is quarantined as unknown_session after this window.
        "PAYGATE_WEBHOOK_UNKNOWN_SESSION_WINDOW_S": "1",
        "PAYGATE_WEBHOOK_RETRY_BASE_MS": "100",
        "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    }


def readme_metrics(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """The rows of the table in README.md's "## Metrics" section: name -> (type, services)."""
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, frozenset[str]]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`paygate_"):
            continue
        name, kind, services = cells[0].strip("`"), cells[1], cells[3]
        named = ALL if services == "all four" else frozenset(part.strip() for part in services.split(","))
        assert name not in rows, f"{name} is in the README table twice"
        rows[name] = (kind, named)
    return rows


def test_the_readme_metric_table_matches_the_metrics_this_test_checks() -> None:
    documented = readme_metrics(README.read_text(encoding="utf-8"))
    assert documented, "no metric table found under README.md's ## Metrics"
    missing = sorted(set(METRICS) - set(documented))
    undocumented_here = sorted(set(documented) - set(METRICS))
    assert not missing, f"metrics served but not in README.md's table: {missing}"
    assert not undocumented_here, f"README.md names metrics this test does not check: {undocumented_here}"
    for name, row in documented.items():
        assert row == METRICS[name], (name, row, METRICS[name])


@pytest.fixture
async def scrape(stack: ServiceStack) -> AsyncIterator[Any]:
    """Each service's metrics served on an ephemeral port, as `paygate serve` serves them on its own."""
    async with contextlib.AsyncExitStack() as ports:
        fetchers = {
            service: await ports.enter_async_context(
                metrics_port(
                    stack.gateway.metrics if service == "gateway" else stack.servers[service].spec.metrics
                )
            )
            for service in SERVICES
        }

        async def fetch(service: str) -> str:
            return await fetchers[service]()

        yield fetch


async def _paid_session(stack: ServiceStack, merchant: Merchant, amount: str = "25.00") -> dict[str, Any]:
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "stripe"},
        headers=merchant.headers,
    )
    assert status == 201, session
    return session


async def _send_stripe(stack: ServiceStack, event: dict[str, Any], secret: str | None = None) -> int:
    secret = secret or stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, _ = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    return status


async def _fulfilled(stack: ServiceStack, session_id: str) -> bool:
    conn = await stack.db.admin()
    try:
        return bool(
            await conn.fetchval(
                "SELECT status = 'done' FROM session.outbox WHERE session_id = $1 AND kind = 'fulfil'",
                session_id,
            )
        )
    finally:
        await conn.close()


async def test_every_service_exports_its_metrics_after_a_paid_session(
    stack: ServiceStack, scrape: Any
) -> None:
    merchant = await stack.create_merchant()
    session = await _paid_session(stack, merchant)
    event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
    assert await _send_stripe(stack, event) == 200
    await polling.eventually(lambda: _fulfilled(stack, session["id"]), timeout=30, what="fulfilment")

    # A second session paid short lands in quarantine (amount_mismatch).
    short = await _paid_session(stack, merchant, "10.00")
    mismatch = build_stripe_event("payment_intent.succeeded", short["id"], short["amount_minor"] - 1, "EUR")
    assert await _send_stripe(stack, mismatch) == 200
    # A forged delivery is refused and counted as a verification failure.
    forged = build_stripe_event("payment_intent.succeeded", short["id"], short["amount_minor"], "EUR")
    assert await _send_stripe(stack, forged, secret="whsec_" + "0" * 32) == 400

    async def quarantined() -> float | None:
        text = await scrape("session")
        value = sample(text, "paygate_quarantine_open_entries", reason="amount_mismatch")
        return value if value else None

    assert await polling.eventually(quarantined, timeout=20, what="quarantine gauge") == 1

    pages = {service: await scrape(service) for service in SERVICES}
    handled = "paygate_grpc_server_handled_total"
    latency = "paygate_grpc_server_handling_seconds_count"
    # RPCs by method and code, with a latency histogram, on each gRPC service.
    session_page = pages["session"]
    assert sample(session_page, handled, method="CreateSession", code="OK") == 2
    assert sample(session_page, handled, method="ApplyPaymentEvent", code="OK") >= 2
    assert sample(session_page, latency, method="ApplyPaymentEvent") >= 2
    keys_page = pages["keys"]
    assert sample(keys_page, handled, service="paygate.keys.v1.KeysService", code="OK") is not None
    assert any(
        (sample(keys_page, latency, method=method) or 0) >= 1
        for method in re.findall(r'method="(\w+)"', keys_page)
    )
    billing_page = pages["billing"]
    billing_methods = set(re.findall(r'handled_total\{code="OK",method="(\w+)"', billing_page))
    assert billing_methods, billing_page
    # Outbox drained after fulfilment: the gauges exist and read 0.
    assert sample(session_page, "paygate_outbox_pending", kind="fulfil") == 0
    assert sample(session_page, "paygate_outbox_oldest_pending_age_seconds", kind="fulfil") == 0
    # Database pool use, on every service.
    for service, page in pages.items():
        assert sample(page, "paygate_db_pool_connections", service=service, state="max") == 10, service
        assert sample(page, "paygate_db_pool_connections", service=service, state="open") >= 1, service
        assert sample(page, "paygate_db_pool_connections", service=service, state="in_use") is not None
    # The gateway: HTTP figures, relay backlog, verification failures by provider.
    gateway_page = pages["gateway"]
    assert sample(gateway_page, "paygate_http_requests_total", route="/webhooks/stripe", status="200") == 2
    assert sample(gateway_page, "paygate_inbox_pending", provider="stripe") == 0
    assert sample(gateway_page, "paygate_inbox_oldest_pending_age_seconds", provider="stripe") == 0
    assert (
        sample(
            gateway_page,
            "paygate_webhook_verification_failures_total",
            provider="stripe",
            reason="invalid_signature",
        )
        == 1
    )
    assert "paygate_grpc_server" not in gateway_page  # the gateway serves no gRPC


async def test_inbox_backlog_counts_events_not_yet_applied(stack: ServiceStack, scrape: Any) -> None:
    """An event stored while the session service is down waits in the inbox: the gauge shows it and its age."""
    merchant = await stack.create_merchant()
    session = await _paid_session(stack, merchant)
    await stack.stop_service("session")
    event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
    assert await _send_stripe(stack, event) == 200

    async def backlog() -> float | None:
        text = await scrape("gateway")
        return sample(text, "paygate_inbox_pending", provider="stripe") or None

    assert await polling.eventually(backlog, timeout=20, what="inbox backlog") == 1
    text = await scrape("gateway")
    assert sample(text, "paygate_inbox_oldest_pending_age_seconds", provider="stripe") >= 0


async def test_events_that_match_no_session_are_counted_once_quarantined(
    stack: ServiceStack, scrape: Any
) -> None:
    """A provider event naming a session paygate does not know (the provider's account pointed at the wrong
    environment, say) is quarantined as unknown_session once the window has passed. Nothing counted it: the
    backlog gauge drops back to 0 and the quarantine gauge counts the session service's entries only. The
    gauge counts such events received in the last 24 hours, per provider, so an alert can page someone."""
    text = await scrape("gateway")
    assert sample(text, "paygate_inbox_unknown_session_events", provider="stripe") == 0
    event = build_stripe_event("checkout.session.completed", str(uuid.uuid4()), 500, "EUR")
    assert await _send_stripe(stack, event) == 200

    async def counted() -> float | None:
        return (
            sample(await scrape("gateway"), "paygate_inbox_unknown_session_events", provider="stripe") or None
        )

    assert await polling.eventually(counted, timeout=30, what="unknown-session gauge") == 1
    text = await scrape("gateway")
    assert sample(text, "paygate_inbox_pending", provider="stripe") == 0
    assert sample(text, "paygate_inbox_unknown_session_events", provider="onecom") == 0


async def test_a_forged_web3_hint_is_counted_as_a_verification_failure(
    stack: ServiceStack, scrape: Any
) -> None:
    """The web3 route verified its hints itself and never counted a refusal, so a rotated or wrong notifier
    secret could not fire PaygateWebhookVerificationFailures; it counts as every provider's route does."""
    headers = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 44,
        "Content-Type": "application/json",
    }
    status, body = await stack.request("POST", "/webhooks/web3", data=b'{"type": "x"}', headers=headers)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    text = await scrape("gateway")
    failures = "paygate_webhook_verification_failures_total"
    assert sample(text, failures, provider="web3", reason="invalid_signature") == 1
    assert (
        sample(text, "paygate_webhook_events_total", provider="web3", result="rejected_invalid_signature")
        == 1
    )


async def test_chain_watcher_lag_and_pass_age(stack: ServiceStack, scrape: Any) -> None:
    conn = await stack.db.admin()
    try:
        await conn.execute(
            """INSERT INTO gateway.chain_cursors (chain_id, last_block, head, updated_at)
               VALUES (31337, 90, 100, now() - interval '5 seconds')"""
        )
        # One block the node could not trace, still open, and one since traced.
        await conn.execute(
            """INSERT INTO gateway.chain_untraced_blocks
                   (chain_id, block_number, block_hash, last_error, next_attempt_at, resolved_at)
               VALUES (31337, 95, '0x95', 'trace_block timed out', now(), NULL),
                      (31337, 96, '0x96', 'trace_block timed out', now(), now())"""
        )
    finally:
        await conn.close()
    text = await scrape("gateway")
    assert sample(text, "paygate_chain_watcher_lag_blocks", chain_id="31337") == 10
    assert sample(text, "paygate_chain_watcher_last_pass_age_seconds", chain_id="31337") >= 5
    # Read from the database by every replica, as the lag is: only the replica holding the watcher lock set it,
    # and one that lost the lock kept exporting its last value, so the max() alert could never clear.
    assert sample(text, "paygate_chain_untraced_blocks", chain_id="31337") == 1
    assert sample(text, "paygate_metrics_sample_errors_total", service="gateway") == 0


async def test_the_public_port_serves_no_metrics(stack: ServiceStack) -> None:
    status, body = await stack.request("GET", "/metrics")
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def _refuse(_: int) -> web.StreamResponse:
    return web.json_response({"ok": False}, status=500)


def _series(name: str, kind: str) -> str:
    return name + "_bucket" if kind == "histogram" else name


def _has_sample(text: str, series: str) -> bool:
    return any(line.startswith((series + "{", series + " ")) for line in text.splitlines())


async def test_every_documented_metric_is_on_its_service_after_a_paid_session(
    stack: ServiceStack, scrape: Any
) -> None:
    receiver = await Receiver().start()
    try:
        merchant = await stack.create_merchant()
        await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
        session = await _paid_session(stack, merchant)
        event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
        assert await _send_stripe(stack, event) == 200
        await polling.eventually(lambda: _fulfilled(stack, session["id"]), timeout=30, what="fulfilment")
        # A session paid short lands in quarantine, so that gauge has a series by reason.
        short = await _paid_session(stack, merchant, "10.00")
        mismatch = build_stripe_event(
            "payment_intent.succeeded", short["id"], short["amount_minor"] - 1, "EUR"
        )
        assert await _send_stripe(stack, mismatch) == 200
        forged = build_stripe_event("payment_intent.succeeded", short["id"], short["amount_minor"], "EUR")
        assert await _send_stripe(stack, forged, secret="whsec_" + "0" * 32) == 400

        async def delivered() -> str | None:
            text = await scrape("session")
            value = sample(text, "paygate_merchant_webhook_deliveries_total", result="delivered", mode="test")
            return text if value else None

        session_page = await polling.eventually(delivered, timeout=30, what="merchant webhook delivered")
        assert receiver.of_type("session.paid")

        async def quarantined() -> float | None:
            return sample(await scrape("session"), "paygate_quarantine_open_entries") or None

        await polling.eventually(quarantined, timeout=20, what="quarantine gauge")
        pages = {service: await scrape(service) for service in SERVICES}
    finally:
        await receiver.stop()

    problems = []
    for name, (kind, services) in METRICS.items():
        for service in SERVICES:
            page = pages[service]
            registered = f"# HELP {name} " in page
            if service not in services:
                if registered:
                    problems.append(f"{name} is served by {service}, which the table does not name")
                continue
            if not registered:
                problems.append(f"{name} is not registered on {service}")
            elif name not in REGISTERED_ONLY and not _has_sample(page, _series(name, kind)):
                problems.append(f"{name} has no {_series(name, kind)} sample on {service}")
    assert not problems, "\n".join(problems)

    # The delivery figures: one delivered attempt, its latency observed, nothing left pending.
    session_page = pages["session"]
    assert (
        sample(session_page, "paygate_merchant_webhook_deliveries_total", result="failed", mode="test") == 0
    )
    assert (sample(session_page, "paygate_merchant_webhook_delivery_seconds_count") or 0) >= 1
    assert sample(session_page, "paygate_merchant_webhook_pending", mode="test") == 0
    assert sample(session_page, "paygate_merchant_webhook_oldest_pending_age_seconds", mode="test") == 0


async def test_merchant_webhook_backlog_and_failed_attempts(stack: ServiceStack, scrape: Any) -> None:
    """A receiver answering 500 leaves the delivery pending: the gauges show it and its age, and each attempt
    counts as failed; the pending age runs from the fan-out."""
    receiver = await Receiver(behaviour=_refuse).start()
    try:
        merchant = await stack.create_merchant()
        await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
        session = await _paid_session(stack, merchant)
        event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
        assert await _send_stripe(stack, event) == 200

        async def failing() -> str | None:
            text = await scrape("session")
            failed = sample(text, "paygate_merchant_webhook_deliveries_total", result="failed", mode="test")
            # The gauges are sampled at most once a second: wait for a sample taken after the attempt.
            pending = sample(text, "paygate_merchant_webhook_pending", mode="test")
            return text if failed and pending else None

        text = await polling.eventually(failing, timeout=30, what="a failed merchant webhook attempt")
        assert sample(text, "paygate_merchant_webhook_pending", mode="test") == 1
        assert sample(text, "paygate_merchant_webhook_pending", mode="live") == 0
        assert sample(text, "paygate_merchant_webhook_deliveries_total", result="delivered", mode="test") == 0
        assert (sample(text, "paygate_merchant_webhook_oldest_pending_age_seconds", mode="test") or 0) > 0
        # Backdating the fan-out moves the age with it: the gauge reads the database, not process memory.
        conn = await stack.db.admin()
        try:
            await conn.execute(
                "UPDATE session.webhook_deliveries SET window_start = now() - interval '1 hour' "
                "WHERE status = 'pending'"
            )
        finally:
            await conn.close()

        async def aged() -> float | None:
            age = sample(
                await scrape("session"), "paygate_merchant_webhook_oldest_pending_age_seconds", mode="test"
            )
            return age if age is not None and age >= 3600 else None

        await polling.eventually(aged, timeout=10, what="pending age from window_start")
    finally:
        await receiver.stop()


def test_attempt_results_are_the_three_documented_values() -> None:
    assert attempt_result(True, None) == "delivered"
    assert attempt_result(False, "address_not_allowed: 10.0.0.1") == "refused"
    assert attempt_result(False, "address_not_allowed: hooks.example resolves to 10.0.0.1") == "refused"
    assert attempt_result(False, "http_500") == "failed"
    assert attempt_result(False, "timeout after 10 s") == "failed"
    assert attempt_result(False, "render_failed: KeyError") == "failed"
