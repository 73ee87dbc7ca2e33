"""Provider webhooks (contract §4): verify, store, answer 200, then apply in the background.

Reply time: the handler does only what the provider's retry logic depends on (read the body, verify the
signature, parse, one INSERT ... ON CONFLICT DO NOTHING committed in autocommit, shared with the events
arriving at the same moment: a group commit) and answers. The apply to
the session service runs after the reply in a background task; the row is leased to it for a while, and if
the process dies the lease expires and the relay (a worker of every gateway) applies it. So a slow session
service, billing or keys never makes a provider wait, and nothing is lost when one is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from webhook_gateway.adapters.inbox_repository import RECEIVED, InboxRepository, InboxWriter
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, POOL
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.observability import METRICS
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.standard_webhooks import normalize_onecom, verify_standard
from webhook_gateway.providers.stripe_webhooks import normalize_stripe, verify_stripe
from webhook_gateway.service_layer.inbox import receive
from webhook_gateway.service_layer.relay import (
    EventProcessor,
    IngressGauge,
    InlineApplier,
    RelaySettings,
    run_relay,
)

if TYPE_CHECKING:
    from webhook_gateway.entrypoints.main import GatewayConfig

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
SHUTDOWN_DRAIN_S = 2.0

PROCESSOR: web.AppKey[EventProcessor] = web.AppKey("webhook_processor")
INLINE: web.AppKey[InlineApplier] = web.AppKey("webhook_inline_applier")
GAUGE: web.AppKey[IngressGauge] = web.AppKey("webhook_ingress_gauge")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITER: web.AppKey[InboxWriter] = web.AppKey("webhook_inbox_writer")


def _count(request: web.Request, provider: str, result: str) -> None:
    request.app[METRICS].webhooks.labels(provider, result).inc()


async def read_body(request: web.Request, provider: str) -> bytes:
    """The raw body, refused with 413 above 1 MiB: up front by Content-Length, or while reading."""
    length = request.content_length
    if length is not None and length > MAX_WEBHOOK_BYTES:
        _count(request, provider, "payload_too_large")
        raise ApiError(413, "payload_too_large", "request body is over the 1 MiB limit")
    try:
        return await request.read()  # aiohttp stops at client_max_size (1 MiB) for chunked bodies
    except web.HTTPRequestEntityTooLarge:
        _count(request, provider, "payload_too_large")
        raise ApiError(413, "payload_too_large", "request body is over the 1 MiB limit") from None


def _verified(
    request: web.Request, provider: str, verify: Callable[[], VerifiedEnvelope]
) -> VerifiedEnvelope:
    try:
        return verify()
    except WebhookRejected as rejected:
        _count(request, provider, f"rejected_{rejected.code}")
        raise ApiError(400, rejected.code, rejected.message) from None
    except ValueError:
        # No usable secret is configured: a deployment fault. 503 makes the provider retry later.
        log.error("webhook signing configuration missing or invalid", extra={"provider": provider})
        _count(request, provider, "not_configured")
        raise ApiError(503, "webhook_not_configured", f"{provider} webhooks are not configured") from None


async def accept(
    request: web.Request, envelope: VerifiedEnvelope, normalized: NormalizedEvent
) -> web.Response:
    """Commit the verified event, answer 200, and start its apply after the answer."""
    app = request.app
    inline = app[INLINE]
    reserved = not normalized.ignored and inline.reserve()
    try:
        stored = await receive(
            app[WRITER],
            envelope,
            normalized,
            claim=reserved,
            lease_s=app[PROCESSOR].settings.lease_s,
        )
    except BaseException:
        if reserved:
            inline.release()
        raise
    if reserved:
        if stored.event is not None and stored.event.status == RECEIVED:
            inline.start(stored.event)
        else:
            inline.release()
    result = "duplicate" if not stored.inserted else ("ignored" if normalized.ignored else "received")
    _count(request, normalized.provider, result)
    return web.json_response(
        {"received": True, "event_id": envelope.event_id, "duplicate": not stored.inserted}
    )


async def stripe_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request, "stripe")
    secrets: Sequence[str] = request.app[CONFIG].stripe_webhook_secrets
    envelope = _verified(
        request,
        "stripe",
        lambda: verify_stripe(raw, request.headers.get("Stripe-Signature"), secrets, int(time.time())),
    )
    return await accept(request, envelope, normalize_stripe(envelope))


async def onecom_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request, "onecom")
    secrets = {
        "test": request.app[CONFIG].onecom_webhook_secrets,
        "live": request.app[CONFIG].onecom_webhook_secrets_live,
    }
    envelope = _verified(
        request, "onecom", lambda: verify_standard(raw, request.headers, secrets, int(time.time()))
    )
    return await accept(request, envelope, normalize_onecom(envelope))


def relay_settings(config: GatewayConfig) -> RelaySettings:
    return RelaySettings(
        apply_deadline_s=config.webhook_apply_deadline_s,
        unknown_session_window_s=config.webhook_unknown_session_window_s,
        retry_base_s=config.webhook_retry_base_s,
        retry_max_s=config.webhook_retry_max_s,
        interval_s=config.webhook_relay_interval_s,
        lease_s=config.webhook_lease_s,
    )


async def _drain_inline(app: web.Application) -> None:
    await app[INLINE].drain(SHUTDOWN_DRAIN_S)


def counted(app: web.Application, handler: Handler) -> Handler:
    """Count the webhook replies in flight, so that applying can step aside during a burst."""
    gauge = app[GAUGE]

    async def answering(request: web.Request) -> web.StreamResponse:
        with gauge.answering():
            return await handler(request)

    return answering


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    processor = EventProcessor(InboxRepository(app[POOL]), app[CLIENTS].session, relay_settings(config))
    app[PROCESSOR] = processor
    app[WRITER] = InboxWriter(InboxRepository(app[POOL]))
    app[GAUGE] = IngressGauge(config.webhook_busy_in_flight)
    app[INLINE] = InlineApplier(processor, config.webhook_max_inline_applies, app[GAUGE])
    app.on_shutdown.append(_drain_inline)
    app.router.add_post("/webhooks/stripe", counted(app, stripe_webhook))
    app.router.add_post("/webhooks/onecom", counted(app, onecom_webhook))


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    async def relay() -> None:
        await run_relay(app[PROCESSOR], gauge=app[GAUGE])

    return [relay]
